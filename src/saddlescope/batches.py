"""The data model: the batches an Objective holds, and how they are taken from the user's data.

A batch is an ``(inputs, targets)`` pair of tensors with a weight n_b / N (its share of the
samples), so the weighted sum of per-batch mean losses is the mean over all the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from saddlescope.errors import InvalidInputError, NonFiniteError

__all__ = ["Batch", "materialize"]


@dataclass(frozen=True)
class Batch:
    """One batch as the objective holds it: inputs, targets, and its weight n_b / N."""

    inputs: Tensor
    targets: Tensor
    weight: float


def materialize(data: Any, dtype: torch.dtype, device: torch.device) -> list[Batch]:
    """Our own copies of the user's batches, in ``dtype`` on ``device``, weighted n_b / N.

    Args:
        data: an ``(inputs, targets)`` pair of tensors, or an iterable of such batches.
        dtype: the floating-point dtype to hold floating tensors in (integer targets stay).
        device: where to hold them.
    """
    if _is_pair(data):
        raw: list[Any] = [data]
    else:
        try:
            raw = list(iter(data))
        except TypeError:
            raise InvalidInputError(
                "data must be an (inputs, targets) pair of tensors or an iterable of such "
                f"batches, got {type(data).__name__}"
            ) from None
    batches: list[tuple[Tensor, Tensor]] = []
    for i, item in enumerate(raw):
        if not _is_pair(item):
            raise InvalidInputError(
                f"batch {i} of data is not an (inputs, targets) pair of tensors "
                f"(got {type(item).__name__})"
            )
        x, y = (_cast(t, dtype, device) for t in item)
        if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
            raise InvalidInputError(
                f"batch {i}: inputs and targets need the same leading (sample) dimension, "
                f"got shapes {tuple(x.shape)} and {tuple(y.shape)}"
            )
        for name, t in (("inputs", x), ("targets", y)):
            if t.is_floating_point() and not torch.isfinite(t).all():
                raise NonFiniteError(f"batch {i}: {name} contain NaN or Inf; clean the data")
        if x.shape[0] > 0:
            batches.append((x, y))
    total = sum(x.shape[0] for x, _ in batches)
    if total == 0:
        raise InvalidInputError("data is empty: it holds no samples; pass at least one batch")
    return [Batch(x, y, x.shape[0] / total) for x, y in batches]


def _cast(t: Tensor, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Our own copy on our device (floating point in our dtype): later edits don't leak in."""
    t = t.detach().to(device, copy=True)
    return t.to(dtype) if t.is_floating_point() else t


def _is_pair(x: Any) -> bool:
    return (
        isinstance(x, (tuple, list))
        and len(x) == 2
        and isinstance(x[0], Tensor)
        and isinstance(x[1], Tensor)
    )
