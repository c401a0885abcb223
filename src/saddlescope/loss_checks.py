"""What the objective checks of the loss at the door, on the first batch at θ₀.

A wrong loss gives a wrong Hessian without any error, so before anything else the first batch's
loss must be a floating-point scalar, finite, computed from outputs and targets of one shape
(for the built-in elementwise losses, where torch would broadcast (16, 1) against (16,) to a
(16, 16) loss with only a warning), and a *mean* over the batch's samples: the objective weights
batches by their size, so a summed loss would count every batch's size twice. The last is
checked by splitting the batch in halves: for a per-sample mean ℓ(b) = (w₁·ℓ(b₁) + w₂·ℓ(b₂)) /
(w₁ + w₂). A loss that couples a batch's samples (contrastive losses) fails that test by design;
``Objective(..., per_sample_mean=False)`` says so and skips it. A cross-entropy with class
weights is a mean weighted by class and is accepted as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from saddlescope.batch_loss import LossFn, describe_batch
from saddlescope.batches import Batch
from saddlescope.errors import InvalidInputError, NonFiniteError
from saddlescope.merging import halves

__all__ = ["check_first_loss", "check_loss", "check_per_sample_mean", "check_shapes"]

_OWN_LOSS = "; with loss_fn=None the model gets the whole batch and must return its own loss"
_ELEMENTWISE = (
    nn.MSELoss,
    nn.L1Loss,
    nn.SmoothL1Loss,
    nn.HuberLoss,
    nn.BCELoss,
    nn.BCEWithLogitsLoss,
    nn.SoftMarginLoss,
)
_ROUNDING = 1e3  # halves and whole agree to this many ε of the loss's size


def check_loss(
    loss_at: Callable[[Batch], Tensor],
    forward: Callable[[Batch], Any],
    batch: Batch,
    loss_fn: LossFn | None,
    *,
    dtype: torch.dtype,
    weight: Callable[[Any], float] | None,
    per_sample_mean: bool,
) -> None:
    """Every check of this module on the first batch, in order (see the module docstring).

    Args:
        loss_at: a batch's loss at θ₀.
        forward: the model's outputs on a pair batch's inputs at θ₀.
        batch: the first batch.
        loss_fn: the user's loss (None: the model's own).
        dtype: the analysis dtype, for messages.
        weight: the objective's ``batch_weight`` (None: sample counts).
        per_sample_mean: check that the loss is a mean over samples.
    """
    if batch.kind == "pair" and isinstance(loss_fn, _ELEMENTWISE):
        with torch.no_grad():
            outputs = _outputs(forward, batch)
        check_shapes(outputs, batch, loss_fn)
    check_first_loss(loss_at, batch, dtype, loss_fn)
    if per_sample_mean and not _class_weighted(loss_fn):
        check_per_sample_mean(loss_at, batch, weight)


def _outputs(forward: Callable[[Batch], Any], batch: Batch) -> Any:
    """The outputs, or None where the forward fails (the loss check then says why)."""
    try:
        return forward(batch)
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError, AttributeError):
        return None


def check_first_loss(
    compute: Callable[[Batch], Tensor], batch: Batch, dtype: torch.dtype, loss_fn: LossFn | None
) -> float:
    """The first batch's loss at θ₀, or a clear error: not computable, not a scalar, not finite.

    Args:
        compute: a batch's loss at θ₀ (called without a graph).
        batch: the first batch.
        dtype: the analysis dtype, for the message.
        loss_fn: the user's loss (None: the model's own), for the message.
    """
    try:
        with torch.no_grad():
            value = compute(batch)
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError, AttributeError) as err:
        raise InvalidInputError(
            f"the model and loss_fn fail on the first batch ({describe_batch(batch)}, "
            f"{dtype}): {err}. Check the input shape, the target shape and dtype "
            "loss_fn expects, and (with norm_stats='batch') that batches hold more than one "
            "sample" + (_OWN_LOSS if loss_fn is None else "")
        ) from err
    if not isinstance(value, Tensor) or value.numel() != 1 or value.ndim != 0:
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise InvalidInputError(
            f"loss_fn must return a scalar tensor (the mean loss over the batch), got {shape}; "
            "use reduction='mean' or add .mean()"
        )
    if not value.is_floating_point():
        raise InvalidInputError(f"loss_fn must return a floating-point scalar, got {value.dtype}")
    if not torch.isfinite(value):
        raise NonFiniteError(
            f"the loss is {float(value)} on the first batch at the model's weights; check the "
            "data, the targets' range for the loss, and the weights (a checkpoint with NaN?)"
        )
    return float(value)


def check_shapes(outputs: Any, batch: Batch, loss_fn: LossFn | None) -> None:
    """Built-in elementwise losses need outputs and targets of one shape (no broadcasting).

    Args:
        outputs: the model's outputs on the batch.
        batch: the batch (an ``(inputs, targets)`` pair is checked; other kinds are not).
        loss_fn: the loss.
    """
    if batch.kind != "pair" or not isinstance(loss_fn, _ELEMENTWISE):
        return
    targets = batch.targets
    if isinstance(outputs, Tensor) and outputs.shape != targets.shape:
        raise InvalidInputError(
            f"{type(loss_fn).__name__} got outputs of shape {tuple(outputs.shape)} and targets "
            f"of shape {tuple(targets.shape)}: torch would broadcast them to a wrong loss; "
            "reshape the targets (e.g. y.unsqueeze(1) or y.view_as(outputs))"
        )


def check_per_sample_mean(
    compute: Callable[[Batch], Tensor],
    batch: Batch,
    weight: Callable[[Any], float] | None,
) -> None:
    """ℓ(b) must be the weighted mean of ℓ over b's halves (a per-sample mean), or a clear error.

    Weighted by ``batch_weight`` or by sample counts: either passes (a sample-mean loss with
    token weights is a per-sample mean, weighted otherwise). Skipped for a batch that cannot be
    split (one sample, or an entry shared by its samples).

    Args:
        compute: a batch's loss at θ₀ (called without a graph).
        batch: the first batch.
        weight: the objective's ``batch_weight`` (None: sample counts).
    """
    split = halves(batch)
    if split is None:
        return
    with torch.no_grad():
        value = compute(batch)
        losses = [float(compute(h)) for h in split]
    whole, eps = float(value), torch.finfo(value.dtype).eps
    means = [_mean(losses, [_weight(h, w) for h in split]) for w in (weight, None)]
    size = max([abs(whole)] + [abs(v) for v in losses])
    if any(m is None or abs(whole - m) <= _ROUNDING * eps * max(size, 1e-30) for m in means):
        return
    mean = means[-1] or 0.0
    ratio = whole / mean if mean else float("inf")
    hint = (
        f" (about {ratio:.3g}×: a sum over the batch? use reduction='mean')"
        if ratio > 1.5 and abs(ratio - round(ratio)) < 0.05
        else ""
    )
    raise InvalidInputError(
        f"the loss is not a per-sample mean: on the first batch ({describe_batch(batch)}) it "
        f"is {whole:.6g}, but the weighted mean of its two halves' losses is {mean:.6g}{hint}. "
        "saddlescope weights batches by size, so a batch's loss must be the mean over its "
        "samples (with batch_weight=, the mean those weights describe, e.g. over tokens). For a "
        "loss that couples a batch's samples (e.g. contrastive), pass per_sample_mean=False"
    )


def _class_weighted(loss_fn: LossFn | None) -> bool:
    """A cross-entropy with class weights: a mean weighted by class, accepted as it is."""
    weighted = isinstance(loss_fn, (nn.CrossEntropyLoss, nn.NLLLoss))
    return weighted and getattr(loss_fn, "weight", None) is not None


def _mean(values: list[float], weights: list[float]) -> float | None:
    total = sum(weights)
    return None if total <= 0 else sum(w * v for w, v in zip(weights, values)) / total


def _weight(batch: Batch, weight: Callable[[Any], float] | None) -> float:
    if weight is None:
        return float(batch.tensors()[0].shape[0])
    return float(weight(batch.data))
