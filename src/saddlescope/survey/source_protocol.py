"""The source's protocol (NTU's 2018 HW1-2): a gradient-norm phase, then eig > 0 as the ratio.

After training, the homework minimised ‖∇L‖² with Adam and called the end point a critical
point; its "minimal ratio" was the share of Hessian eigenvalues > 0, in float32. Neither step
checks anything: the end points are not critical at any stated tolerance, and the exact zero
eigenvalues of piecewise-linear networks fall on either side of 0 by rounding. A study with
``search.gradnorm_phase`` runs the phase, keeps this naive ratio (float32 and float64) in the
record's search evidence, and then searches from the phase's end point as any run does, so the
figure can show the naive view beside the certified one.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from saddlescope.objective import Objective
from saddlescope.operators import symmetric_eigh

__all__ = ["gradnorm_phase", "naive_ratios"]


def gradnorm_phase(obj: Objective, theta: Tensor, steps: int, lr: float) -> Tensor:
    """Adam on ½‖∇L(θ)‖² (its gradient H·g: one gradient and one HVP per step) from θ.

    Args:
        obj: the objective.
        theta: where to start.
        steps: Adam steps.
        lr: Adam's learning rate.
    """
    param = nn.Parameter(theta.detach().clone())
    opt = torch.optim.Adam([param], lr=lr)
    for _ in range(steps):
        point = param.detach()
        param.grad = obj.hvp(point, obj.grad(point))
        opt.step()
    return param.detach().clone()


def naive_ratios(obj: Objective, obj32: Objective, theta: Tensor) -> dict[str, Any]:
    """What the source reported at θ: the loss, ‖g‖ and the share of eigenvalues > 0.

    Args:
        obj: the run's float64 objective.
        obj32: the same model and data in float32.
        theta: the gradient-norm phase's end point.
    """
    lam64 = symmetric_eigh(obj.hessian(theta), eigenvectors=False)[0]
    lam32 = symmetric_eigh(obj32.hessian(theta.to(torch.float32)), eigenvectors=False)[0]
    loss, g = obj.loss_and_grad(theta)
    return {
        "loss": float(loss),
        "grad_norm": float(torch.linalg.vector_norm(g)),
        "ratio_float32": float((lam32 > 0).double().mean()),
        "ratio_float64": float((lam64 > 0).double().mean()),
    }
