"""The verdict at θ as a result: kind, inertia, index, minimum ratio, tolerance, the way out.

:func:`saddlescope.classify.classify` reaches it; this module is what it returns — the frozen
:class:`CriticalPoint` and the :class:`Probe` evidence of a degenerate point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from torch import Tensor

from saddlescope.cost import PathChoice
from saddlescope.inertia import InertiaEstimate
from saddlescope.nonsmooth.kinks import KinkCheck
from saddlescope.spectrum import Spectrum
from saddlescope.tolerance import Inertia, Tolerance

__all__ = ["CriticalPoint", "Kind", "Probe", "ProbeVerdict"]

Kind = Literal["minimum", "maximum", "saddle", "degenerate", "on-kink", "not-critical"]
ProbeVerdict = Literal["rise", "fall", "flat"]


@dataclass(frozen=True)
class Probe:
    """One probe of the loss along a null direction: ΔL = L(θ + sign·radius·u) − L(θ).

    ``direction`` indexes the probed directions (eigenvector order, random mixtures after),
    ``sign`` is ±1, ``radius`` the step length, ``delta_loss`` ΔL, and ``verdict`` whether the
    loss rose, fell or stayed flat beyond the first-order slope and rounding.
    """

    direction: int
    sign: int
    radius: float
    delta_loss: float
    verdict: ProbeVerdict

    def to_dict(self) -> dict[str, Any]:
        """The five fields by name."""
        return dict(self.__dict__)

    def __str__(self) -> str:
        return (
            f"Probe(direction {self.direction}, {'+' if self.sign > 0 else '−'}{self.radius:g}: "
            f"ΔL = {self.delta_loss:.3g}, {self.verdict})"
        )


@dataclass(frozen=True, eq=False)
class CriticalPoint:
    """The verdict at θ: kind, inertia, index, minimum ratio, tolerance and the way out.

    ``inertia`` is exact when the whole spectrum was computed, an estimate with error bars
    (from :attr:`inertia_estimate`) when only extreme eigenvalues were, and None when neither.
    ``escape_direction`` is a unit vector along which the loss decreases: the eigenvector of the
    most negative eigenvalue (sign chosen so that gᵀu ≤ 0), or, at a higher-order saddle, the
    probed null direction that fell furthest; ``escape_curvature`` its eigenvalue. ``theta``,
    ``loss`` and ``grad_norm`` describe the point, ``tolerance`` what "critical" and "zero" meant,
    ``spectrum`` the eigenvalues computed, ``kind``/``strict``/``resolution`` the verdict and how
    it was reached, ``probes`` the loss probes of a degenerate point, ``objective`` what the
    objective was (sizes, dtype, device), ``path`` which path the spectrum took and why (dense
    or Lanczos, by estimated time; None when the caller fixed it by ``k``), ``kink`` the
    activation boundary an "on-kink" point sits on (:class:`~saddlescope.nonsmooth.KinkCheck`).
    """

    theta: Tensor
    loss: float
    grad_norm: float
    tolerance: Tolerance
    spectrum: Spectrum
    kind: Kind
    strict: bool | None
    resolution: str
    escape_direction: Tensor | None
    escape_curvature: float | None
    probes: tuple[Probe, ...] = ()
    objective: dict[str, Any] = field(default_factory=dict)
    inertia_estimate: InertiaEstimate | None = None  # SLQ counts when only extremes were computed
    path: PathChoice | None = None  # how the spectrum's path was chosen (None: not chosen here)
    kink: KinkCheck | None = None  # the activation boundary an "on-kink" point sits on

    @property
    def inertia(self) -> Inertia | None:
        """(n₋, n₀, n₊): exact from a complete spectrum, else estimated (with bars), else None."""
        exact = self.spectrum.inertia
        if exact is not None:
            return exact
        return None if self.inertia_estimate is None else self.inertia_estimate.inertia

    @property
    def is_estimate(self) -> bool:
        """True when index and minimum ratio are SLQ estimates (see :attr:`inertia_estimate`)."""
        return self.inertia is not None and self.inertia.estimated

    @property
    def index(self) -> float | None:
        """n₋/n, the fraction of negative eigenvalues (Dauphin et al.'s α).

        Estimated if :attr:`is_estimate` (± ``inertia.index_err``); None if neither exact nor
        estimated.
        """
        return None if self.inertia is None else self.inertia.index

    @property
    def minimum_ratio(self) -> float | None:
        """n₊/n, the fraction of positive eigenvalues: 1 at a strict local minimum.

        Estimated if :attr:`is_estimate` (± ``inertia.minimum_ratio_err``).
        """
        return None if self.inertia is None else self.inertia.minimum_ratio

    @property
    def threshold(self) -> float:
        """The zero band's half-width: |λ| ≤ threshold counts as zero."""
        return self.spectrum.threshold

    def predicted_decrease(self, t: float) -> float | None:
        """½·λ·t², the quadratic model's change of loss for a step t along the escape direction.

        Args:
            t: the step length along the (unit) escape direction.
        """
        return None if self.escape_curvature is None else 0.5 * self.escape_curvature * t * t

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain Python values (θ and the escape direction as lists)."""
        return {
            "kind": self.kind,
            "strict": self.strict,
            "resolution": self.resolution,
            "loss": self.loss,
            "grad_norm": self.grad_norm,
            "tolerance": self.tolerance.to_dict(),
            "threshold": self.threshold,
            "inertia": None if self.inertia is None else self.inertia.to_dict(),
            "index": self.index,
            "minimum_ratio": self.minimum_ratio,
            "is_estimate": self.is_estimate,
            "inertia_estimate": None
            if self.inertia_estimate is None
            else self.inertia_estimate.to_dict(),
            "escape_curvature": self.escape_curvature,
            "escape_direction": None
            if self.escape_direction is None
            else self.escape_direction.tolist(),
            "theta": self.theta.tolist(),
            "spectrum": self.spectrum.to_dict(),
            "probes": [p.to_dict() for p in self.probes],
            "objective": self.objective,
            "path": None if self.path is None else self.path.to_dict(),
            "kink": None if self.kink is None else self.kink.to_dict(),
        }

    def __str__(self) -> str:
        strict = "" if self.strict is None else (" (strict)" if self.strict else " (not strict)")
        lines = [
            f"{self.kind}{strict} — {self.resolution}",
            *([] if self.path is None else [f"  path {self.path}"]),
            f"  loss {self.loss:.6g}, ‖g‖ {self.grad_norm:.3g} "
            f"(grad_tol {self.tolerance.grad_tol:g})",
            f"  {self.spectrum}",
        ]
        if self.is_estimate and self.inertia_estimate is not None:
            est, bars = self.inertia_estimate, self.inertia_estimate.inertia
            lines.append(
                f"  index ≈ {bars.index:.4g} ± {bars.index_err:.2g}, minimum ratio ≈ "
                f"{bars.minimum_ratio:.4g} ± {bars.minimum_ratio_err:.2g} (SLQ estimate, "
                f"{100 * est.confidence:g} % bars, {est.hvps} HVPs)"
            )
        elif self.index is not None:
            lines.append(f"  index {self.index:.4g}, minimum ratio {self.minimum_ratio:.4g}")
        if self.escape_curvature is not None:
            lines.append(f"  escape along the eigenvector of λ = {self.escape_curvature:.6g}")
        elif self.escape_direction is not None:
            lines.append("  escape along a null direction where the loss falls (higher order)")
        return "\n".join(lines)
