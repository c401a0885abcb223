"""Problems with known answers: the worked example and small scalar fields.

The worked example (MISSION §3): the model y = w1·w2·x on the single example (x, ŷ) = (1, 1)
with squared error, so

    L(w1, w2) = (1 − w1·w2)²,   ∇L = −2(1 − w1w2)·(w2, w1),
    H = [[2w2², 4w1w2 − 2], [4w1w2 − 2, 2w1²]].

Its critical points are the origin (a saddle: eigenvalues ±2, loss 1) and the hyperbola
w1·w2 = 1 (eigenvalues 0 and 2(w1² + w2²), loss 0: non-strict global minima).

:func:`scalar_objective` wraps any smooth f(w) as an :class:`~saddlescope.Objective`, for test
functions whose critical points are known (x² + y³, monkey saddles, flat directions…).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from saddlescope.objective import Objective

__all__ = [
    "ScalarField",
    "WorkedExample",
    "scalar_objective",
    "worked_example",
    "worked_example_grad",
    "worked_example_hessian",
    "worked_example_loss",
    "worked_example_minima",
    "worked_example_objective",
]


class WorkedExample(nn.Module):
    """The two-parameter linear model y = w1·w2·x (MISSION §3)."""

    def __init__(self, w1: float = 0.5, w2: float = -0.3) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.tensor(float(w1)))
        self.w2 = nn.Parameter(torch.tensor(float(w2)))

    def forward(self, x: Tensor) -> Tensor:
        return self.w1 * self.w2 * x


def worked_example(
    w1: float = 0.5, w2: float = -0.3
) -> tuple[WorkedExample, nn.Module, tuple[Tensor, Tensor]]:
    """(model, loss_fn, data) of the worked example: one sample x = 1, ŷ = 1, squared error."""
    data = (torch.ones(1, 1), torch.ones(1, 1))
    return WorkedExample(w1, w2), nn.MSELoss(), data


def worked_example_objective(dtype: torch.dtype = torch.float64) -> Objective:
    """The worked example as an :class:`Objective` over θ = (w1, w2), in float64 by default."""
    model, loss_fn, data = worked_example()
    return Objective(model, loss_fn, data, dtype=dtype)


def worked_example_loss(w: Tensor) -> Tensor:
    """Closed form L(w) = (1 − w1·w2)²."""
    return (1 - w[0] * w[1]) ** 2


def worked_example_grad(w: Tensor) -> Tensor:
    """Closed form ∇L = −2(1 − w1w2)·(w2, w1)."""
    r = 1 - w[0] * w[1]
    return torch.stack([-2 * r * w[1], -2 * r * w[0]])


def worked_example_hessian(w: Tensor) -> Tensor:
    """Closed form H = [[2w2², 4w1w2 − 2], [4w1w2 − 2, 2w1²]]."""
    off = 4 * w[0] * w[1] - 2
    return torch.stack([torch.stack([2 * w[1] ** 2, off]), torch.stack([off, 2 * w[0] ** 2])])


def worked_example_minima(extent: float = 2.2, num: int = 200) -> list[tuple[Tensor, Tensor]]:
    """The two branches of w1·w2 = 1 inside [−extent, extent]², as (w1, w2) curves."""
    w1 = torch.logspace(math.log10(1 / extent), math.log10(extent), num, dtype=torch.float64)
    return [(w1, 1 / w1), (-w1, -1 / w1)]


class ScalarField(nn.Module):
    """A module whose only parameter is w and whose output is f(w), whatever the input."""

    def __init__(self, f: Callable[[Tensor], Tensor], w0: Tensor) -> None:
        super().__init__()
        self.f = f
        self.w = nn.Parameter(torch.as_tensor(w0, dtype=torch.float64).clone())

    def forward(self, x: Tensor) -> Tensor:
        return self.f(self.w) + 0 * x.sum()


def _identity_loss(output: Tensor, target: Tensor) -> Tensor:
    return output


def scalar_objective(f: Callable[[Tensor], Tensor], w0: Tensor | list[float]) -> Objective:
    """L(θ) = f(θ) as a float64 :class:`Objective` (θ starts at ``w0``).

    >>> obj = scalar_objective(lambda w: w[0] ** 2 + w[1] ** 3, [0.0, 0.0])
    >>> obj.hessian(obj.theta0).tolist()
    [[2.0, 0.0], [0.0, 0.0]]
    """
    model = ScalarField(f, torch.as_tensor(w0, dtype=torch.float64))
    data = (torch.zeros(1, 1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))
    return Objective(model, _identity_loss, data, dtype=torch.float64)
