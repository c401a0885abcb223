"""The options of each escape method, one frozen dataclass per method, validated on construction.

:func:`~saddlescope.escape_saddle` takes the chosen method's options as its dataclass or as a
plain dict of the same names; an option the method does not use is an error, not silently
ignored (``radius`` means nothing to ``"curvature"``).

``stall_grad_norm`` is the gradient norm at or below which a method treats the walk as stalled
and acts (looks for negative curvature, perturbs). It is not ``grad_tol`` (‖∇L‖ ≤ grad_tol means
*critical*): a stall is declared far above any critical tolerance. The same name and default
serve :class:`~saddlescope.SaddleEscape`.

>>> PerturbedGDOptions.build("perturbed-gd", {"radius": 0.1})
PerturbedGDOptions(stall_grad_norm=0.001, radius=0.1, wait=10)
>>> try:
...     CurvatureOptions.build("curvature", {"radius": 0.1})
... except InvalidInputError as error:
...     print(error)
method 'curvature' has no option 'radius'; its options: stall_grad_norm
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Self

from saddlescope.checks import check_int, check_positive
from saddlescope.errors import InvalidInputError
from saddlescope.tolerance import STALL_GRAD_NORM

__all__ = [
    "CurvatureOptions",
    "GDOptions",
    "MethodOptions",
    "PerturbedGDOptions",
    "SaddleFreeNewtonOptions",
]


@dataclass(frozen=True)
class MethodOptions:
    """The common base of each method's options: building them from a dict, and printing them."""

    @classmethod
    def build(cls, method: str, given: Mapping[str, Any] | MethodOptions | None) -> Self:
        """The options for ``method`` from ``given``: None (defaults), a dict, or an instance.

        Args:
            method: the method's name, for the error messages.
            given: None for the defaults, a dict of option names to values, or an instance of
                this class.

        Returns:
            The validated options.

        Raises:
            InvalidInputError: ``given`` holds a name the method does not use, a bad value, or
                is the options of another method.
        """
        if given is None:
            return cls()
        if isinstance(given, cls):
            return given
        if isinstance(given, MethodOptions):
            raise InvalidInputError(
                f"method {method!r} takes {cls.__name__} (or a dict), not {type(given).__name__}"
            )
        if not isinstance(given, Mapping):
            raise InvalidInputError(
                f"options must be a dict or {cls.__name__}, got {type(given).__name__}"
            )
        names = [f.name for f in fields(cls)]
        for key in given:
            if key not in names:
                known = ", ".join(names) if names else "none"
                raise InvalidInputError(
                    f"method {method!r} has no option {key!r}; its options: {known}"
                )
        return cls(**given)

    def to_dict(self) -> dict[str, Any]:
        """The options by name."""
        return asdict(self)

    def __str__(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) or "no options"


@dataclass(frozen=True)
class GDOptions(MethodOptions):
    """Plain gradient descent (``"gd"``) has no options of its own (``lr`` is common to all)."""


@dataclass(frozen=True)
class CurvatureOptions(MethodOptions):
    """Options of ``"curvature"``: the negative-curvature step where the gradient is small.

    Args:
        stall_grad_norm: look for negative curvature only while ‖g‖ ≤ this; above it, and
            where no eigenvalue is below −threshold, take a gradient step.
    """

    stall_grad_norm: float = STALL_GRAD_NORM

    def __post_init__(self) -> None:
        check_positive("stall_grad_norm", self.stall_grad_norm)


@dataclass(frozen=True)
class PerturbedGDOptions(MethodOptions):
    """Options of ``"perturbed-gd"`` (Jin et al., 2017): gradient descent plus noise when stalled.

    Args:
        stall_grad_norm: perturb only while ‖g‖ ≤ this.
        radius: the perturbation is uniform in the ball of this radius.
        wait: at most one perturbation every ``wait`` steps (an integer ≥ 1).
    """

    stall_grad_norm: float = STALL_GRAD_NORM
    radius: float = 1e-2
    wait: int = 10

    def __post_init__(self) -> None:
        check_positive("stall_grad_norm", self.stall_grad_norm)
        check_positive("radius", self.radius)
        check_int("wait", self.wait, 1)


@dataclass(frozen=True)
class SaddleFreeNewtonOptions(MethodOptions):
    """Options of ``"saddle-free-newton"`` (Dauphin et al., 2014): θ ← θ − α|H|⁻¹g.

    Args:
        damping: eigenvalue magnitudes are floored at damping·max|λ| before inverting.
        k: when the dense Hessian does not fit, the number of extreme eigenpairs per end
            (Lanczos) that span the subspace where |H|⁻¹ is applied (an integer ≥ 1).
    """

    damping: float = 1e-3
    k: int = 10

    def __post_init__(self) -> None:
        check_positive("damping", self.damping)
        check_int("k", self.k, 1)
