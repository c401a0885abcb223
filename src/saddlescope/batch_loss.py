"""How one batch becomes one loss: call the model the way the batch's structure says.

* pair ``(inputs, targets)``: ``loss_fn(model(inputs), targets)``;
* tuple ``(x1, …, xk, targets)``: ``loss_fn(model(x1, …, xk), batch)``;
* dict: ``loss_fn(model(**batch), batch)``;
* ``loss_fn=None``: the model gets the whole batch (``model(**batch)``, ``model(*batch)``) and
  returns its own loss — HuggingFace's ``outputs.loss``, an ``outputs["loss"]``, or a scalar.

The model is called functionally (``torch.func.functional_call``) with θ's parameters swapped in,
under :func:`~saddlescope.kernels.curvature_kernels`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call

from saddlescope.batches import Batch
from saddlescope.errors import InvalidInputError
from saddlescope.kernels import curvature_kernels, missing_derivative

__all__ = [
    "LossFn",
    "batch_loss",
    "describe_batch",
    "flat_leaf",
    "loss_and_grad_at",
    "model_loss",
    "model_outputs",
]

LossFn = Callable[..., Tensor]


def batch_loss(
    module: nn.Module, params: dict[str, Tensor], batch: Batch, loss_fn: LossFn | None
) -> Tensor:
    """ℓ_b(θ): the loss of one batch with ``params`` in the module.

    Args:
        module: our copy of the model.
        params: θ as ``{name: tensor}`` (parameters not named keep the module's values).
        batch: the batch.
        loss_fn: the user's loss (see the module docstring), or None for the model's own.
    """
    data = batch.data
    with curvature_kernels():
        if loss_fn is None:
            args, kwargs = _whole(batch)
            return model_loss(functional_call(module, params, args, kwargs), batch.index)
        if batch.kind == "pair":
            return loss_fn(functional_call(module, params, (data[0],)), data[1])
        if batch.kind == "tuple":
            return loss_fn(functional_call(module, params, tuple(data[:-1])), data)
        return loss_fn(functional_call(module, params, (), dict(data)), data)


def flat_leaf(theta: Tensor) -> Tensor:
    """A copy of θ that requires grad: the flat leaf of a gradient graph.

    Never an inference tensor, even when made inside ``torch.inference_mode``.

    Args:
        theta: the parameters, a flat vector.
    """
    with torch.inference_mode(False):
        return theta.detach().clone().requires_grad_(True)


def loss_and_grad_at(
    loss_at: Callable[[Tensor], Tensor], leaf: Tensor, *, create_graph: bool = False
) -> tuple[Tensor, Tensor]:
    """(ℓ, ∇ℓ) at a :func:`flat_leaf` by plain autograd (under ``no_grad`` too).

    Also under ``inference_mode``; parameters the loss does not use get 0, and an op without a
    second derivative is named (:func:`~saddlescope.kernels.missing_derivative`).

    Args:
        loss_at: the loss as a function of the flat parameters (e.g. one batch's).
        leaf: where, a :func:`flat_leaf`.
        create_graph: keep the gradient's graph, for Hessian-vector products.
    """
    with torch.inference_mode(False), torch.enable_grad():
        loss = loss_at(leaf)
        if not loss.requires_grad:  # no path from θ to the loss at all
            return loss, torch.zeros_like(leaf, requires_grad=False)
        try:
            (g,) = torch.autograd.grad(
                loss, leaf, create_graph=create_graph, allow_unused=True, materialize_grads=True
            )
        except RuntimeError as err:
            raise missing_derivative(err) or err from err
    return loss, g


def model_outputs(module: nn.Module, params: dict[str, Tensor], batch: Batch) -> Any:
    """The model's outputs on a pair batch's inputs (before the loss), e.g. to check shapes.

    Args:
        module: our copy of the model.
        params: θ as ``{name: tensor}``.
        batch: an ``(inputs, targets)`` batch.
    """
    with curvature_kernels():
        return functional_call(module, params, (batch.inputs,))


def _whole(batch: Batch) -> tuple[tuple[Any, ...], dict[str, Any] | None]:
    if batch.kind == "dict":
        return (), dict(batch.data)
    return tuple(batch.data), None


def model_loss(outputs: Any, index: int = 0) -> Tensor:
    """The loss a model returned itself: ``outputs.loss``, ``outputs["loss"]`` or a scalar.

    Args:
        outputs: what the model returned.
        index: the batch's position, for the message.
    """
    if isinstance(outputs, Tensor) and outputs.ndim == 0:
        return outputs
    loss = getattr(outputs, "loss", None)
    if loss is None and isinstance(outputs, Mapping):
        loss = outputs.get("loss")
    if not isinstance(loss, Tensor):
        raise InvalidInputError(
            f"loss_fn=None uses the model's own loss, but on batch {index} it returned "
            f"{type(outputs).__name__} without one; put the labels in the batch (HF: 'labels') "
            "or pass a loss_fn"
        )
    return loss


def describe_batch(batch: Batch) -> str:
    """The batch's structure and shapes, for error messages.

    Args:
        batch: the batch.
    """
    data = batch.data
    if isinstance(data, Mapping):
        parts = [f"{k}: {_shape(v)}" for k, v in data.items()]
        return "dict batch {" + ", ".join(parts) + "}"
    names = ["inputs", "targets"] if batch.kind == "pair" else [str(i) for i in range(len(data))]
    return (
        f"{batch.kind} batch (" + ", ".join(f"{n} {_shape(v)}" for n, v in zip(names, data)) + ")"
    )


def _shape(v: Any) -> str:
    if isinstance(v, Tensor):
        return f"{tuple(v.shape)} {str(v.dtype).removeprefix('torch.')}"
    return type(v).__name__
