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
from saddlescope.objective import Objective
from saddlescope.search import CriticalPointSearch, SearchMethod, find_critical_point

__all__ = ["EscapeCheck", "WorkedExampleReport", "run_worked_example"]


_PLURAL = {"minimum": "minima", "maximum": "maxima", "saddle": "saddles"}


def _clean(x: float) -> float:
    """x, or 0.0 when it is round-off (|x| ≤ 1e-12): for printing coordinates."""
    return 0.0 if abs(x) <= 1e-12 else x


@dataclass(frozen=True)
class EscapeCheck:
    """A step of length t from the saddle along the escape direction u.

    Attributes:
        t: the step length (u is a unit vector, so t is the distance moved in θ).
        predicted: the quadratic model's change of loss ½·λ·t², λ < 0 the escape curvature.
        actual: the change of loss measured, L(θ + t·u) − L(θ).
    """

    t: float
    predicted: float
    actual: float

    def to_dict(self) -> dict[str, Any]:
        """The three numbers, by name."""
        return dict(self.__dict__)

    def __str__(self) -> str:
        return f"t = {self.t:.4g}: predicted ΔL {self.predicted:.4g}, actual {self.actual:.4g}"


@dataclass(frozen=True, eq=False)
class WorkedExampleReport:
    """Everything the demo found: searches, distinct critical points, the escape check, a slice.

    Attributes:
        searches: one :class:`CriticalPointSearch` per starting point of the grid, row-major.
        points: the distinct critical points the converged searches reached, classified;
            the saddle first, then by (w1, w2).
        hessians: the dense Hessian at each of ``points``, in the same order.
        saddle: the first saddle of ``points`` (the origin), or None if no search reached one.
        escape: one :class:`EscapeCheck` per step length, from ``saddle`` along its escape
            direction (empty without a saddle).
        surface: the loss on the plane θ = s·e1 + t·e2, s, t ∈ [−2.2, 2.2], for a contour plot.
        minima_curves: the two branches of the valley of minima w1·w2 = 1, as (w1, w2) curves.
    """

    searches: tuple[CriticalPointSearch, ...]
    points: tuple[CriticalPoint, ...]
    hessians: tuple[torch.Tensor, ...]
    saddle: CriticalPoint | None
    escape: tuple[EscapeCheck, ...]
    surface: Plane
    minima_curves: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    def to_dict(self) -> dict[str, Any]:
        """Searches, points (each with its Hessian) and escape checks as plain values.

        The surface and the minima curves are left out: they are for plotting, not for records.
        """
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
    method: SearchMethod = "newton-mr",
    steps: tuple[float, ...] = (0.1, 0.5, math.sqrt(2)),
    resolution: int = 161,
) -> WorkedExampleReport:
    """Search from a ``grid``×``grid`` lattice of starts in [−extent, extent]², classify, escape.

    Args:
        grid: starting points per axis (≥ 1); the searches start from grid² points.
        extent: the starts span [−extent, extent] on each axis (default 1.8, so the lattice
            holds points near both branches of the valley w1·w2 = 1 and near the origin).
        method: the search method of :func:`find_critical_point` ("newton-mr",
            "newton-tr", "lm", "gradnorm" or "auto"; default "newton-mr").
        steps: the step lengths t at which the escape from the saddle is checked (default 0.1,
            0.5 and √2, the distance from the origin to the nearest minimum).
        resolution: points per axis of the plotted loss surface (≥ 2).

    Returns:
        A :class:`WorkedExampleReport`.
    """
    if grid < 1 or resolution < 2:
        raise InvalidInputError("grid must be ≥ 1 and resolution ≥ 2")
    obj = toy.worked_example_objective()
    axis = torch.linspace(-extent, extent, grid, dtype=torch.float64)
    searches = tuple(
        find_critical_point(obj, torch.stack([a, b]), method=method) for a in axis for b in axis
    )
    points: list[CriticalPoint] = []
    for s in searches:
        if s.converged and all(torch.dist(s.theta, p.theta) > 1e-6 for p in points):
            points.append(classify(obj, s.theta, loss_lower_bound=0.0))
    points.sort(key=lambda p: (p.kind != "saddle", float(p.theta[0]), float(p.theta[1])))
    saddle = next((p for p in points if p.kind == "saddle"), None)
    escape = () if saddle is None else _escape_checks(obj, saddle, steps)
    e1, e2 = torch.eye(2, dtype=torch.float64)
    span = torch.linspace(-2.2, 2.2, resolution, dtype=torch.float64)
    surface = plane(obj, torch.zeros(2, dtype=torch.float64), e1, e2, span, span)
    curves = tuple(toy.worked_example_minima(2.2))
    hessians = tuple(obj.hessian(p.theta) for p in points)
    return WorkedExampleReport(searches, tuple(points), hessians, saddle, escape, surface, curves)


def _escape_checks(
    obj: Objective, saddle: CriticalPoint, steps: tuple[float, ...]
) -> tuple[EscapeCheck, ...]:
    """Predicted vs actual ΔL along the saddle's escape eigenvector (none without one)."""
    u, lam = saddle.escape_direction, saddle.escape_curvature
    if u is None or lam is None:
        return ()
    after = obj.losses(torch.stack([saddle.theta + t * u for t in steps]))
    return tuple(
        EscapeCheck(t, 0.5 * lam * t * t, float(a) - saddle.loss) for t, a in zip(steps, after)
    )
