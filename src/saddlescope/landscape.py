"""The loss on lines and planes through θ: data for pictures, computed as pure functions of θ.

    line:   a ↦ L(θ + a·d)              plane:   (a, b) ↦ L(θ + a·d1 + b·d2)

All points of a slice are evaluated in one ``vmap``'d pass (:meth:`Objective.losses`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from saddlescope.errors import InvalidInputError
from saddlescope.objective import Objective

__all__ = ["Line", "Plane", "line", "plane"]


@dataclass(frozen=True, eq=False)
class Line:
    """L(origin + a·direction) for each a in ``alphas``."""

    origin: Tensor
    direction: Tensor
    alphas: Tensor
    losses: Tensor

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).tolist() for k in ("origin", "direction", "alphas", "losses")}


@dataclass(frozen=True, eq=False)
class Plane:
    """``losses[j, i]`` = L(origin + alphas[i]·d1 + betas[j]·d2)."""

    origin: Tensor
    d1: Tensor
    d2: Tensor
    alphas: Tensor
    betas: Tensor
    losses: Tensor

    def to_dict(self) -> dict[str, Any]:
        keys = ("origin", "d1", "d2", "alphas", "betas", "losses")
        return {k: getattr(self, k).tolist() for k in keys}


def _grid_axis(name: str, values: Tensor | list[float]) -> Tensor:
    t = torch.as_tensor(values, dtype=torch.float64).flatten()
    if t.numel() == 0 or not torch.isfinite(t).all():
        raise InvalidInputError(f"{name} must be a non-empty list of finite numbers")
    return t


def line(obj: Objective, theta: Tensor, direction: Tensor, alphas: Tensor | list[float]) -> Line:
    """The loss along θ + a·d."""
    theta, d = obj.check_theta(theta), obj.check_theta(direction, "direction")
    a = _grid_axis("alphas", alphas)
    losses = obj.losses(theta + a.to(theta)[:, None] * d)
    return Line(theta.cpu(), d.cpu(), a, losses.cpu().to(torch.float64))


def plane(
    obj: Objective,
    theta: Tensor,
    d1: Tensor,
    d2: Tensor,
    alphas: Tensor | list[float],
    betas: Tensor | list[float],
) -> Plane:
    """The loss on the plane θ + a·d1 + b·d2 over the grid ``alphas`` × ``betas``."""
    theta = obj.check_theta(theta)
    d1, d2 = obj.check_theta(d1, "d1"), obj.check_theta(d2, "d2")
    a, b = _grid_axis("alphas", alphas), _grid_axis("betas", betas)
    B, A = torch.meshgrid(b.to(theta), a.to(theta), indexing="ij")
    points = theta + A.reshape(-1, 1) * d1 + B.reshape(-1, 1) * d2
    losses = obj.losses(points).reshape(B.shape)
    return Plane(theta.cpu(), d1.cpu(), d2.cpu(), a, b, losses.cpu().to(torch.float64))
