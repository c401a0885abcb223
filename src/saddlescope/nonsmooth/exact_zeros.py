"""Exact zeros: Hessian rows that are zero by the network's structure, not by rounding.

Some coordinate directions of θ are in the Hessian's null space exactly: a parameter the loss
does not use, and in a piecewise-linear network the incoming weights, bias and outgoing weights
of a unit that is off on every sample (a dead ReLU) — the loss does not depend on them anywhere
in θ's linear region, so their rows and columns of H are exact zeros and each is an eigenvector
with eigenvalue 0. Autograd computes those rows as exact zeros too (the ReLU's backward masks
them), so one product H·v with a random v finds them: (H·v)_j = 0 exactly for a zero row, and
with probability one not otherwise. Two products (``probes``) make a chance cancellation
negligible.

The count k is a lower bound on the exact zeros of the spectrum (zero directions that are not
coordinate directions, such as ReLU's rescaling symmetry at a critical point, are not counted).
An eigensolver returns these eigenvalues as rounding, ~ε·max|λ| with either sign; the zero band
of :mod:`saddlescope.tolerance` counts them as zero, and :mod:`~saddlescope.nonsmooth.kinks`
explains why that is the honest count and what it means for the minimum ratio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from saddlescope.checks import check_int
from saddlescope.objective import Objective

__all__ = ["ExactZeros", "exact_zero_directions"]


@dataclass(frozen=True)
class ExactZeros:
    """The coordinate directions of θ whose Hessian rows are exactly zero.

    Attributes:
        count: how many rows of H(θ) are exactly zero (k).
        n: the number of parameters (H is n×n).
        by_parameter: (parameter name, its zero rows) for each parameter with any.
        probes: the random products H·v it took.
        seed: the seed of those vectors.
    """

    count: int
    n: int
    by_parameter: tuple[tuple[str, int], ...]
    probes: int
    seed: int

    @property
    def fraction(self) -> float:
        """k/n, the share of eigenvalues that are exact zeros by structure."""
        return self.count / self.n

    def to_dict(self) -> dict[str, Any]:
        """The fields (``by_parameter`` as a dict) and the fraction."""
        d = dict(self.__dict__)
        d.update(by_parameter=dict(self.by_parameter), fraction=self.fraction)
        return d

    def __str__(self) -> str:
        where = ", ".join(f"{name} {k}" for name, k in self.by_parameter) or "none"
        return (
            f"{self.count} of {self.n} Hessian eigenvalues are exact zeros (rows of H exactly 0: "
            f"{where}); the zero band counts them as zero"
        )


def exact_zero_directions(
    obj: Objective, theta: Tensor, *, probes: int = 2, seed: int = 0
) -> ExactZeros:
    """Count the rows of H(θ) that are exactly zero, from ``probes`` random products H·v.

    Args:
        obj: the objective.
        theta: the parameters.
        probes: how many random vectors (default 2); a row counts when every product is
            exactly 0 there.
        seed: seeds the random vectors.

    >>> import torch
    >>> from saddlescope import Objective, exact_zero_directions
    >>> net = torch.nn.Sequential(torch.nn.Linear(1, 2), torch.nn.ReLU(), torch.nn.Linear(2, 1))
    >>> x = torch.linspace(0, 1, 5).unsqueeze(1)
    >>> obj = Objective(net, torch.nn.MSELoss(), (x, x), dtype=torch.float64)
    >>> theta = torch.tensor([1.0, 1.0, 0.0, -1.0, 1.0, 1.0, 0.0])  # unit 2 dead: z = x − 1 ≤ 0
    >>> exact_zero_directions(obj, theta).count  # its weight, bias and outgoing weight
    3
    """
    theta = obj.check_theta(theta)
    probes = check_int("probes", probes, 1)
    gen = torch.Generator().manual_seed(seed)
    V = torch.randn(obj.num_params, probes, generator=gen, dtype=torch.float64)
    HV = obj.hessian_operator(theta) @ V.to(dtype=obj.dtype, device=obj.device)
    zero = (HV == 0).all(dim=1).cpu()
    counts, start = [], 0
    for name, shape in zip(obj.param_names, obj.param_shapes):
        size = shape.numel()
        k = int(zero[start : start + size].sum())
        start += size
        if k:
            counts.append((name, k))
    return ExactZeros(int(zero.sum()), obj.num_params, tuple(counts), probes, seed)
