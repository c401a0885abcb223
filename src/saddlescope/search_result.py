"""What a critical-point search returns: its end point, why it ended, and each step.

:class:`CriticalPointSearch` is :func:`~saddlescope.search.find_critical_point`'s result and
:class:`SearchStep` one iteration of its history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from saddlescope.flatness import Flatness
from saddlescope.nonsmooth.kinks import KinkCheck

__all__ = ["CriticalPointSearch", "SearchStep"]


@dataclass(frozen=True)
class SearchStep:
    """One iteration of a critical-point search.

    ``step`` is its number (0: the start), ``loss`` and ``grad_norm`` where it ended,
    ``step_size`` the ‖Δθ‖ it took, ``hvps`` the products used so far (cumulative), ``phase``
    the method that took it.
    """

    step: int
    loss: float
    grad_norm: float
    step_size: float
    hvps: int
    phase: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The fields by name."""
        return dict(self.__dict__)

    def __str__(self) -> str:
        return (
            f"step {self.step} ({self.phase}): loss {self.loss:.6g}, ‖g‖ {self.grad_norm:.3g}, "
            f"‖Δθ‖ {self.step_size:.3g}, {self.hvps} HVPs"
        )


@dataclass(frozen=True, eq=False)
class CriticalPointSearch:
    """Where a critical-point search ended, and why.

    ``status`` is why it ended: "converged" (‖g‖ ≤ grad_tol), "on-kink" (not converged, and θ
    sits on an activation boundary of a piecewise-linear network, where ∇L jumps: ``kink``),
    "gradient-flat" (not converged, and g lies in H's zero band: ``flatness.status ==
    "flat"``), "stalled" (no step made progress), or the budget that ran out: "max-steps",
    "max-hvps", "max-seconds". Only
    "converged" is a critical point (``converged``). ``theta``, ``loss``, ``grad_norm`` describe
    where it ended, ``grad_tol`` what it aimed for, ``method`` how (``phases``: each method the
    driver ran and its steps); ``steps``, ``hvps``, ``grads`` and ``seconds`` what it cost;
    ``flatness`` the gradient-flatness evidence where it did not converge; ``crossings`` how
    many steps crossed an activation boundary (None for a smooth model); ``history`` one
    :class:`SearchStep` per iteration.
    """

    theta: Tensor
    method: str
    status: str
    converged: bool
    loss: float
    grad_norm: float
    grad_tol: float
    steps: int
    hvps: int
    grads: int
    seconds: float
    flatness: Flatness | None
    history: tuple[SearchStep, ...]
    phases: tuple[tuple[str, int], ...] = ()
    crossings: int | None = None
    kink: KinkCheck | None = None

    @property
    def gradient_flat(self) -> bool:
        """True when the search ended at a certified gradient-flat point."""
        return self.status == "gradient-flat"

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain Python values."""
        return {
            "method": self.method,
            "status": self.status,
            "converged": self.converged,
            "gradient_flat": self.gradient_flat,
            "loss": self.loss,
            "grad_norm": self.grad_norm,
            "grad_tol": self.grad_tol,
            "steps": self.steps,
            "hvps": self.hvps,
            "grads": self.grads,
            "seconds": self.seconds,
            "phases": [list(p) for p in self.phases],
            "flatness": None if self.flatness is None else self.flatness.to_dict(),
            "crossings": self.crossings,
            "kink": None if self.kink is None else self.kink.to_dict(),
            "theta": self.theta.tolist(),
            "history": [s.to_dict() for s in self.history],
        }

    def __str__(self) -> str:
        phases = " → ".join(f"{m}×{k}" for m, k in self.phases)
        flat = "" if self.flatness is None else f"\n  flatness: {self.flatness}"
        flat += "" if not self.crossings else f"\n  {self.crossings} activation-boundary crossings"
        flat += "" if self.kink is None else f"\n  {self.kink}"
        return (
            f"{self.method} ({phases}): {self.status} after {self.steps} steps — loss "
            f"{self.loss:.6g}, ‖g‖ {self.grad_norm:.3g} (grad_tol {self.grad_tol:g}); "
            f"{self.hvps} HVPs, {self.grads} gradients, {self.seconds:.3g} s{flat}"
        )
