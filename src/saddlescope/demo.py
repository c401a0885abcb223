"""The worked example end to end (MISSION §3–4): find, classify, escape, and slice.

From a grid of starting points, :func:`run_worked_example` searches for critical points of
L(w1, w2) = (1 − w1·w2)², classifies each one (the loss is ≥ 0, so a degenerate point at loss 0
is a minimum), and at the saddle compares the predicted decrease ½λt² along the escape direction
with the actual one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from saddlescope import toy
from saddlescope.classify import CriticalPoint, classify
from saddlescope.errors import InvalidInputError
from saddlescope.landscape import Plane, plane
from saddlescope.search import CriticalPointSearch, find_critical_point

__all__ = ["EscapeCheck", "WorkedExampleReport", "run_worked_example"]


_PLURAL = {"minimum": "minima", "maximum": "maxima", "saddle": "saddles"}


def _clean(x: float) -> float:
    """x, or 0.0 when it is round-off (|x| ≤ 1e-12): for printing coordinates."""
    return 0.0 if abs(x) <= 1e-12 else x


@dataclass(frozen=True)
class EscapeCheck:
    """A step of length t from the saddle along the escape direction u."""

    t: float
    predicted: float  # ½·λ·t²
    actual: float  # L(θ + t·u) − L(θ)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __str__(self) -> str:
        return f"t = {self.t:.4g}: predicted ΔL {self.predicted:.4g}, actual {self.actual:.4g}"


@dataclass(frozen=True, eq=False)
class WorkedExampleReport:
    """Everything the demo found: searches, distinct critical points, the escape check, a slice."""

    searches: tuple[CriticalPointSearch, ...]
    points: tuple[CriticalPoint, ...]
    hessians: tuple[torch.Tensor, ...]  # dense H at each point, in the order of ``points``
    saddle: CriticalPoint | None
    escape: tuple[EscapeCheck, ...]
    surface: Plane
    minima_curves: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "searches": [s.to_dict() for s in self.searches],
            "points": [
                {**p.to_dict(), "hessian": h.tolist()} for p, h in zip(self.points, self.hessians)
            ],
            "escape": [e.to_dict() for e in self.escape],
        }

    def __str__(self) -> str:
        converged = sum(s.converged for s in self.searches)
        kinds: dict[str, int] = {}
        for p in self.points:
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        by_kind = ", ".join(f"{n} {_PLURAL.get(k, k) if n > 1 else k}" for k, n in kinds.items())
        lines = [
            f"Worked example: {converged}/{len(self.searches)} searches converged; "
            f"{len(self.points)} distinct critical points ({by_kind or 'none'})"
        ]
        s = self.saddle
        if s is None or s.escape_direction is None:
            lines.append("no saddle with an escape direction")
        else:
            at = ", ".join(f"{_clean(x):.4g}" for x in s.theta.tolist())
            u = ", ".join(f"{_clean(x):.4g}" for x in s.escape_direction.tolist())
            curv = "" if s.escape_curvature is None else f" (λ = {s.escape_curvature:.4g})"
            lines.append(f"saddle at ({at}), loss {s.loss:.6g}: escape along ({u}){curv}")
        lines += [f"  {e}" for e in self.escape]
        return "\n".join(lines)


def run_worked_example(
    *,
    grid: int = 6,
    extent: float = 1.8,
    method: str = "newton-mr",
    steps: tuple[float, ...] = (0.1, 0.5, math.sqrt(2)),
    resolution: int = 161,
) -> WorkedExampleReport:
    """Search from a ``grid``×``grid`` lattice of starts in [−extent, extent]², classify, escape."""
    if grid < 1 or resolution < 2:
        raise InvalidInputError("grid must be ≥ 1 and resolution ≥ 2")
    obj = toy.worked_example_objective()
    axis = torch.linspace(-extent, extent, grid, dtype=torch.float64)
    searches = tuple(
        find_critical_point(obj, torch.stack([a, b]), method=method)  # type: ignore[arg-type]
        for a in axis
        for b in axis
    )
    points: list[CriticalPoint] = []
    for s in searches:
        if s.converged and all(torch.dist(s.theta, p.theta) > 1e-6 for p in points):
            points.append(classify(obj, s.theta, loss_lower_bound=0.0))
    points.sort(key=lambda p: (p.kind != "saddle", float(p.theta[0]), float(p.theta[1])))
    saddle = next((p for p in points if p.kind == "saddle"), None)
    escape: tuple[EscapeCheck, ...] = ()
    if saddle is not None and saddle.escape_direction is not None:
        u = saddle.escape_direction
        after = obj.losses(torch.stack([saddle.theta + t * u for t in steps]))
        escape = tuple(
            EscapeCheck(t, saddle.predicted_decrease(t), float(a) - saddle.loss)  # type: ignore[arg-type]
            for t, a in zip(steps, after)
        )
    e1, e2 = torch.eye(2, dtype=torch.float64)
    span = torch.linspace(-2.2, 2.2, resolution, dtype=torch.float64)
    surface = plane(obj, torch.zeros(2, dtype=torch.float64), e1, e2, span, span)
    curves = tuple(toy.worked_example_minima(2.2))
    hessians = tuple(obj.hessian(p.theta) for p in points)
    return WorkedExampleReport(searches, tuple(points), hessians, saddle, escape, surface, curves)
