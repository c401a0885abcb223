"""What an escape returns: its path, step by step, and the summary of one method's run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor

__all__ = ["EscapeResult", "EscapeStep"]


@dataclass(frozen=True)
class EscapeStep:
    """The state after one step of an escape.

    Args:
        step: the step number (0 is the start).
        loss: L(θ) after the step.
        grad_norm: ‖∇L(θ)‖ after the step.
        action: what the step did: "start", "curvature", "gradient", "perturb" or "newton".
        hvps: Hessian-vector products spent so far (cumulative).
        seconds: wall-clock seconds since the start (cumulative).
    """

    step: int
    loss: float
    grad_norm: float
    action: str
    hvps: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The step's fields by name."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"step {self.step} ({self.action}): loss {self.loss:.6g}, ‖g‖ {self.grad_norm:.3g}, "
            f"{self.hvps} HVPs, {self.seconds:.3g} s"
        )


@dataclass(frozen=True, eq=False)
class EscapeResult:
    """The path of an escape from one start by one method.

    Args:
        method: the method's name (one of :data:`ESCAPE_METHODS`).
        theta: θ at the end.
        path: the start and every step after it.
        target_loss: the loss to reach, or None for a fixed number of steps.
        steps_to_target: the first step with loss ≤ target_loss, or None if none reached it.
        lr: the gradient step size used.
    """

    method: str
    theta: Tensor
    path: tuple[EscapeStep, ...]
    target_loss: float | None
    steps_to_target: int | None
    lr: float

    @property
    def loss(self) -> float:
        """The final loss."""
        return self.path[-1].loss

    @property
    def reached(self) -> bool:
        """Whether the target loss was reached."""
        return self.steps_to_target is not None

    @property
    def hvps(self) -> int:
        """Hessian-vector products spent in all."""
        return self.path[-1].hvps

    @property
    def seconds(self) -> float:
        """Wall-clock seconds in all."""
        return self.path[-1].seconds

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary with θ and the whole path."""
        return {
            "method": self.method,
            "reached": self.reached,
            "steps_to_target": self.steps_to_target,
            "target_loss": self.target_loss,
            "loss": self.loss,
            "hvps": self.hvps,
            "seconds": self.seconds,
            "lr": self.lr,
            "theta": self.theta.tolist(),
            "path": [s.to_dict() for s in self.path],
        }

    def __str__(self) -> str:
        reach = (
            f"reached loss ≤ {self.target_loss:.3g} in {self.steps_to_target} steps"
            if self.reached
            else f"did not reach {self.target_loss:.3g} in {len(self.path) - 1} steps"
            if self.target_loss is not None
            else f"{len(self.path) - 1} steps"
        )
        return (
            f"{self.method}: {reach}; loss {self.path[0].loss:.6g} → {self.loss:.6g}, "
            f"{self.hvps} HVPs, {self.seconds:.3g} s"
        )
