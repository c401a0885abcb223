"""Restriction to an affine subspace, z ↦ L(θ0 + B·z): an Objective with Hessian BᵀHB."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.func import functional_call

from saddlescope.errors import InvalidInputError
from saddlescope.lifting.views import objective_like
from saddlescope.objective import Objective
from saddlescope.params import ParamLayout

__all__ = ["restrict"]


class _AffineSlice(nn.Module):
    """z ↦ f(x; θ0 + B·z): a module whose only trainable parameter is z (length k)."""

    def __init__(
        self,
        module: nn.Module,
        layout: ParamLayout,
        theta0: Tensor,
        basis: Tensor,
    ) -> None:
        super().__init__()
        self.inner = module
        self.layout = layout
        self.theta0: Tensor
        self.basis: Tensor
        self.register_buffer("theta0", theta0.detach().clone())
        self.register_buffer("basis", basis.detach().clone())
        self.z = nn.Parameter(torch.zeros(basis.shape[1], dtype=basis.dtype, device=basis.device))

    def forward(self, x: Tensor) -> Tensor:
        """The inner module's output at θ0 + B·z."""
        params = self.layout.unflatten(self.theta0 + self.basis @ self.z)
        return functional_call(self.inner, params, (x,))


def _check_basis(obj: Objective, basis: Tensor) -> Tensor:
    """``basis`` as an n×k real finite matrix in the objective's dtype and device, or raise."""
    B = torch.as_tensor(basis)
    if B.ndim == 1:
        B = B.reshape(-1, 1)
    if B.ndim != 2 or B.shape[0] != obj.num_params or B.shape[1] < 1:
        raise InvalidInputError(
            f"basis must be an n×k matrix with n = {obj.num_params} (this objective's parameters) "
            f"and k ≥ 1 directions as columns, got shape {tuple(torch.as_tensor(basis).shape)}"
        )
    if B.is_complex():
        raise InvalidInputError(f"basis must be real, got {B.dtype}")
    B = B.to(device=obj.device, dtype=obj.dtype)
    if not torch.isfinite(B).all():
        raise InvalidInputError("basis holds NaN or Inf; pass finite directions")
    return B


def restrict(obj: Objective, theta0: Tensor, basis: Tensor) -> Objective:
    """The objective on the affine subspace θ0 + B·z: z ↦ L(θ0 + B·z), an :class:`Objective` over z.

    The new objective starts at z = 0 (i.e. θ0); its gradient is Bᵀ∇L and its Hessian BᵀHB at
    θ0 + B·z. Same loss, data, dtype and device as ``obj``; ``obj`` is not changed.

    Args:
        obj: the objective to restrict.
        theta0: the subspace's origin, a flat parameter vector of ``obj``.
        basis: n×k, the k directions as columns (a length-n vector is one direction).

    >>> import torch
    >>> from saddlescope import classify, toy
    >>> obj = toy.worked_example_objective()          # the origin is a saddle in 2-D ...
    >>> d = torch.tensor([[1.0], [-1.0]], dtype=torch.float64) / 2**0.5
    >>> line = restrict(obj, torch.zeros(2), d)        # L(t·(1, −1)/√2) = (1 + t²/2)²
    >>> classify(line, line.theta0).kind               # ... and a minimum on this line
    'minimum'
    """
    theta0 = obj.check_theta(theta0, "theta0")
    B = _check_basis(obj, basis)
    wrapper = _AffineSlice(obj.module, obj.layout, theta0, B)
    return objective_like(obj, wrapper)
