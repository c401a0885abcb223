"""Things made like an objective: its module at another θ, and an objective for another model.

The lifting experiments build wide networks from narrow ones and need objectives with the same
loss, data and settings (:func:`objective_like`); the half-precision check needs the same model
in float32 (:func:`saddlescope.precision.float32_twin`). Both start from the objective's own
module with a θ loaded (:func:`module_at`).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from saddlescope.objective import Objective

__all__ = ["module_at", "objective_like"]


def module_at(obj: Objective, theta: Tensor) -> nn.Module:
    """A fresh copy of the objective's module with θ loaded (θ's parameters trainable).

    In the objective's dtype and device and in eval mode; the objective is not changed.

    Args:
        obj: the objective whose module is copied.
        theta: the flat parameters to load.
    """
    theta = obj.check_theta(theta)
    module = copy.deepcopy(obj.module)
    params = dict(module.named_parameters())
    with torch.no_grad():
        for name, value in obj.unflatten(theta).items():
            params[name].copy_(value)
            params[name].requires_grad_(True)
    return module


def objective_like(obj: Objective, model: nn.Module, **options: Any) -> Objective:
    """An Objective for ``model`` with ``obj``'s loss, held data, dtype, device and settings.

    Args:
        obj: the objective whose loss, batches and settings are reused (its data held).
        model: the new model.
        **options: keywords of :class:`~saddlescope.Objective` that differ (e.g. ``dtype``).
    """
    settings: dict[str, Any] = {
        "dtype": obj.dtype,
        "device": obj.device,
        "norm_stats": obj.norm_stats,
        "memory_budget": obj.memory_budget,
    }
    return Objective(model, obj.loss_fn, [b.data for b in obj.batches], **settings | options)
