"""The loss on lines and planes through θ: data for pictures, computed as pure functions of θ.

    line:   a ↦ L(θ + a·d)              plane:   (a, b) ↦ L(θ + a·d1 + b·d2)

All points of a slice are evaluated in one ``vmap``'d pass (:meth:`Objective.losses`).

Directions to slice along come from :mod:`saddlescope.directions` (re-exported here).

:func:`slice_1d` and :func:`slice_2d` evaluate symmetric grids t ∈ [−span, span] along them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from saddlescope.checks import check_positive
from saddlescope.directions import (
    EigenDirection,
    eigen_directions,
    eigen_pairs,
    orthogonalize,
    random_direction,
)
from saddlescope.errors import InvalidInputError
from saddlescope.objective import Objective

__all__ = [
    "EigenDirection",
    "Line",
    "Plane",
    "eigen_directions",
    "eigen_pairs",
    "line",
    "orthogonalize",
    "plane",
    "random_direction",
    "slice_1d",
    "slice_2d",
]


def _span(values: Tensor) -> str:
    if values.numel() == 0:
        return "[]"
    return f"[{float(values.min()):.4g}, {float(values.max()):.4g}]"


def _loss_range(losses: Tensor) -> str:
    """The least and greatest finite loss, and how many losses were not finite."""
    finite = losses[torch.isfinite(losses)]
    if finite.numel() == 0:
        return "loss: no finite value"
    text = f"loss min {float(finite.min()):.6g}, max {float(finite.max()):.6g}"
    bad = losses.numel() - finite.numel()
    return text + (f" ({bad} not finite)" if bad else "")


@dataclass(frozen=True, eq=False)
class Line:
    """L(origin + a·direction) for each a in ``alphas``; ``origin_loss`` = L(origin).

    Attributes:
        origin: θ, the point the line passes through (flat, on the CPU).
        direction: d, the line's direction (flat, as given: not normalised).
        alphas: the coordinates a along d, float64.
        losses: L(origin + a·direction) for each a, float64, same length as ``alphas``.
        origin_loss: L(origin), or None when not evaluated.
    """

    origin: Tensor
    direction: Tensor
    alphas: Tensor
    losses: Tensor
    origin_loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field, tensors as lists."""
        keys = ("origin", "direction", "alphas", "losses")
        return {**{k: getattr(self, k).tolist() for k in keys}, "origin_loss": self.origin_loss}

    def __str__(self) -> str:
        at = "" if self.origin_loss is None else f", L(origin) {self.origin_loss:.6g}"
        return (
            f"Line: {self.alphas.numel()} points in {self.origin.numel()} params, "
            f"a ∈ {_span(self.alphas)}, {_loss_range(self.losses)}{at}"
        )


@dataclass(frozen=True, eq=False)
class Plane:
    """``losses[j, i]`` = L(origin + alphas[i]·d1 + betas[j]·d2).

    Attributes:
        origin: θ, the plane's origin (flat, on the CPU).
        d1: the first direction (as given: not normalised), along the a axis.
        d2: the second direction, along the b axis.
        alphas: the coordinates a along ``d1``, float64.
        betas: the coordinates b along ``d2``, float64.
        losses: the (len(betas), len(alphas)) float64 grid of losses: rows follow b, columns a
            (the layout ``matplotlib.contour(alphas, betas, losses)`` expects).
    """

    origin: Tensor
    d1: Tensor
    d2: Tensor
    alphas: Tensor
    betas: Tensor
    losses: Tensor

    def to_dict(self) -> dict[str, Any]:
        """Every field, tensors as (nested) lists."""
        keys = ("origin", "d1", "d2", "alphas", "betas", "losses")
        return {k: getattr(self, k).tolist() for k in keys}

    def __str__(self) -> str:
        return (
            f"Plane: {self.alphas.numel()}×{self.betas.numel()} grid in {self.origin.numel()} "
            f"params, a ∈ {_span(self.alphas)}, b ∈ {_span(self.betas)}, "
            f"{_loss_range(self.losses)}"
        )


def _grid_axis(name: str, values: Tensor | list[float]) -> Tensor:
    try:
        t = torch.as_tensor(values, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        t = torch.empty(0)
    if t.ndim != 1 or t.numel() == 0 or not torch.isfinite(t).all():
        raise InvalidInputError(f"{name} must be a non-empty list of finite numbers")
    return t


def line(obj: Objective, theta: Tensor, direction: Tensor, alphas: Tensor | list[float]) -> Line:
    """The loss along θ + a·d (and at θ itself, as ``origin_loss``).

    Args:
        obj: the objective L.
        theta: the point θ the slice passes through (flat, like ``obj.theta0``).
        direction: d, a flat vector like θ, used as given (a is in units of ‖d‖).
        alphas: the coordinates a, any finite numbers (a non-empty list or 1-D tensor).

    Returns:
        A :class:`Line`.
    """
    theta, d = obj.check_theta(theta), _check_direction(obj, direction)
    a = _grid_axis("alphas", alphas)
    points = torch.cat([theta[None], theta + a.to(theta)[:, None] * d])
    losses = obj.losses(points).cpu().to(torch.float64)
    return Line(theta.cpu(), d.cpu(), a, losses[1:], float(losses[0]))


def plane(
    obj: Objective,
    theta: Tensor,
    d1: Tensor,
    d2: Tensor,
    alphas: Tensor | list[float],
    betas: Tensor | list[float],
) -> Plane:
    """The loss on the plane θ + a·d1 + b·d2 over the grid ``alphas`` × ``betas``.

    Args:
        obj: the objective L.
        theta: the point θ the slice passes through (flat, like ``obj.theta0``).
        d1: the first direction, a flat vector like θ, used as given.
        d2: the second direction, used as given (pass the pair through :func:`orthogonalize`
            for exact plane coordinates).
        alphas: the coordinates a along d1 (a non-empty list or 1-D tensor of finite numbers).
        betas: the coordinates b along d2.

    Returns:
        A :class:`Plane` with ``losses[j, i]`` at (alphas[i], betas[j]).
    """
    theta = obj.check_theta(theta)
    d1, d2 = _check_direction(obj, d1, "d1"), _check_direction(obj, d2, "d2")
    a, b = _grid_axis("alphas", alphas), _grid_axis("betas", betas)
    B, A = torch.meshgrid(b.to(theta), a.to(theta), indexing="ij")
    points = theta + A.reshape(-1, 1) * d1 + B.reshape(-1, 1) * d2
    losses = obj.losses(points).reshape(B.shape)
    return Plane(theta.cpu(), d1.cpu(), d2.cpu(), a, b, losses.cpu().to(torch.float64))


# ------------------------------------------------------------------------------- directions
def _check_direction(obj: Objective, d: Tensor, name: str = "direction") -> Tensor:
    """``d`` as a vector like θ, finite and non-zero, or a clear error."""
    d = obj.check_theta(d, name)
    if not torch.isfinite(d).all():
        raise InvalidInputError(f"{name} holds NaN or Inf; pass a finite vector")
    if not float(torch.linalg.vector_norm(d)) > 0:
        raise InvalidInputError(
            f"{name} is the zero vector, so it spans no line; pass a non-zero direction "
            "(eigen_directions or random_direction build one)"
        )
    return d


def _check_num(name: str, num: int) -> int:
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
        raise InvalidInputError(f"{name} must be an integer ≥ 2 (grid points), got {num!r}")
    return num


def _symmetric_axis(span: float, num: int, name: str = "span") -> Tensor:
    s = check_positive(name, span)
    return torch.linspace(-s, s, num, dtype=torch.float64)


def _pair(value: Any, name: str) -> tuple[Any, Any]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InvalidInputError(f"{name} must be one value or a pair, got {value!r}")
        return value[0], value[1]
    return value, value


def slice_1d(
    obj: Objective, theta: Tensor, direction: Tensor, span: float = 1.0, num: int = 51
) -> Line:
    """L(θ + t·d) at ``num`` points t ∈ [−span, span] (t in units of d's length, not normalised).

    Args:
        obj: the objective L.
        theta: the point θ the slice passes through (flat, like ``obj.theta0``).
        direction: d, a finite non-zero flat vector like θ (e.g. from :func:`eigen_directions`
            or :func:`random_direction`).
        span: the half-width of the symmetric grid, > 0 (default 1).
        num: the number of grid points, ≥ 2 (default 51; odd puts a point at θ).

    >>> from saddlescope import toy
    >>> obj = toy.worked_example_objective()
    >>> u = torch.tensor([1.0, 1.0], dtype=torch.float64) / 2**0.5
    >>> [round(v, 12) for v in slice_1d(obj, torch.zeros(2), u, num=3).losses.tolist()]
    [0.25, 1.0, 0.25]
    """
    d = _check_direction(obj, direction)
    return line(obj, theta, d, _symmetric_axis(span, _check_num("num", num)))


def slice_2d(
    obj: Objective,
    theta: Tensor,
    d1: Tensor,
    d2: Tensor,
    span: float | tuple[float, float] = 1.0,
    num: int | tuple[int, int] = 51,
) -> Plane:
    """L(θ + a·d1 + b·d2) on a grid a ∈ [−span₁, span₁] × b ∈ [−span₂, span₂].

    ``span`` and ``num`` are one value for both axes or a pair. d1 and d2 are used as given
    (not normalised); they must not be parallel — pass them through :func:`orthogonalize` so that
    points mapped into the plane land exactly.

    Args:
        obj: the objective L.
        theta: the point θ the slice passes through (flat, like ``obj.theta0``).
        d1: the first direction, a finite non-zero flat vector like θ.
        d2: the second direction, not parallel to d1.
        span: the grid's half-width, > 0: one value for both axes or (span₁, span₂) (default 1).
        num: grid points per axis, ≥ 2: one value or a pair (default 51).

    Returns:
        A :class:`Plane` over the grid.
    """
    d1, d2 = _check_direction(obj, d1, "d1"), _check_direction(obj, d2, "d2")
    cos = float(d1 @ d2) / float(torch.linalg.vector_norm(d1) * torch.linalg.vector_norm(d2))
    if abs(cos) >= 1 - 1e-12:
        raise InvalidInputError(
            "d1 and d2 are parallel, so they span no plane; pass two independent directions "
            "(orthogonalize(d1, d2) makes the second perpendicular)"
        )
    (s1, s2), (n1, n2) = _pair(span, "span"), _pair(num, "num")
    a = _symmetric_axis(s1, _check_num("num", n1))
    b = _symmetric_axis(s2, _check_num("num", n2))
    return plane(obj, theta, d1, d2, a, b)
