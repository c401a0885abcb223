"""Batches of one shape as one graph: fewer, larger kernels for Hessian-vector products.

A product through k cached gradient graphs of small batches launches every kernel k times on
tensors k times smaller; on real models that per-kernel overhead made a product over four
batches cost up to 1.4× the same product over the same data as one batch. So runs of
consecutive batches that can be stacked — same structure, same dtypes, same shapes after the
leading (sample) dimension, every tensor's leading dimension its sample count, equal non-tensor
entries — are concatenated into one batch whose graph replaces theirs.

Stacking is only right when the loss is a weighted mean of per-sample terms, with the batch
weights as its normaliser: ℓ(b₁ ∪ … ∪ b_k) = Σ w_i·ℓ(b_i) / Σ w_i. That fails for BatchNorm
with batch statistics, losses that compare the samples of a batch (contrastive losses), a
``loss_fn`` that sums, or a ``batch_weight`` that is not the loss's own normaliser. It is
checked once per objective, on the losses at the first θ, to within the rounding of the
sums (:func:`stacking_agrees`); where it fails nothing is stacked. A stacked graph is kept
small enough (``max_weight``) that the temporaries of a product through it stay modest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from saddlescope.batches import Batch

__all__ = ["Stacking", "halves", "mergeable_runs", "merged", "stack_key", "stacking_agrees"]

_ROUNDING = 1e3  # stacked and separate losses agree to this many ε of their size
_STACK_BYTES = 64 * 1024**2  # a stacked run's graph: at least this many bytes may be gathered


def stack_key(batch: Batch) -> tuple[Any, ...] | None:
    """What must be equal for two batches to stack, or None if this one cannot.

    Args:
        batch: the batch.
    """
    data = batch.data
    names = tuple(data) if isinstance(data, Mapping) else tuple(range(len(data)))
    values = list(data.values()) if isinstance(data, Mapping) else list(data)
    tensors = [v for v in values if isinstance(v, Tensor)]
    if not tensors or tensors[0].ndim == 0:
        return None
    samples = tensors[0].shape[0]
    parts: list[Any] = [batch.kind, names]
    for v in values:
        if isinstance(v, Tensor):
            if v.ndim == 0 or v.shape[0] != samples:
                return None  # an entry shared by the batch's samples: not stackable
            parts.append((v.dtype, v.device, tuple(v.shape[1:])))
        else:
            parts.append(("value", _plain(v)))
    return tuple(parts)


def _plain(v: Any) -> Any:
    """A non-tensor entry as a comparable key (its repr when it is not hashable)."""
    try:
        hash(v)
    except TypeError:
        return repr(v)
    return v


def mergeable_runs(batches: Sequence[Batch], max_weight: float = math.inf) -> list[list[Batch]]:
    """The batches in order, grouped into runs of consecutive batches that can be stacked.

    Args:
        batches: the batches.
        max_weight: the most weight a run may gather (a batch heavier than it is a run of
            its own): bounds the size of a stacked graph, whose double backward allocates
            temporaries in proportion to it.
    """
    runs: list[list[Batch]] = []
    last: tuple[Any, ...] | None = None
    for b in batches:
        key = stack_key(b)
        room = runs and sum(x.weight for x in runs[-1]) + b.weight <= max_weight
        if room and key is not None and key == last:
            runs[-1].append(b)
        else:
            runs.append([b])
        last = key
    return runs


def merged(run: Sequence[Batch]) -> Batch:
    """One batch of a run's samples, in order, weighing what they weigh together.

    Args:
        run: batches with equal :func:`stack_key`.
    """
    first = run[0]
    if len(run) == 1:
        return first
    weight = sum(b.weight for b in run)
    if isinstance(first.data, Mapping):
        data: Any = {k: _stack([b.data[k] for b in run]) for k in first.data}
    else:
        data = tuple(_stack([b.data[i] for b in run]) for i in range(len(first.data)))
    return Batch(data, first.kind, weight, first.index)


def halves(batch: Batch) -> tuple[Batch, Batch] | None:
    """The batch's first and second half of samples (None when it cannot be split).

    Args:
        batch: a batch whose every tensor is per sample (see :func:`stack_key`).
    """
    if stack_key(batch) is None:
        return None
    n = batch.tensors()[0].shape[0]
    if n < 2:
        return None
    cut = n // 2

    def part(sl: slice) -> Batch:
        data = batch.data
        if isinstance(data, Mapping):
            new: Any = {k: v[sl] if isinstance(v, Tensor) else v for k, v in data.items()}
        else:
            new = tuple(v[sl] if isinstance(v, Tensor) else v for v in data)
        return Batch(new, batch.kind, batch.weight, batch.index)

    return part(slice(0, cut)), part(slice(cut, n))


def _stack(values: list[Any]) -> Any:
    return torch.cat(values) if isinstance(values[0], Tensor) else values[0]


def stacking_agrees(runs: Sequence[Sequence[Batch]], loss: Callable[[Batch], Tensor]) -> bool:
    """Whether every stacked run's loss is the weighted mean of its batches' losses.

    True when no run has more than one batch (nothing to check). Compares, for each run,
    ℓ(stacked) with Σ w_i·ℓ_i / Σ w_i to within 1000 ε of Σ w_i·|ℓ_i| / Σ w_i.

    Args:
        runs: runs from :func:`mergeable_runs`.
        loss: a batch's loss at the θ to check at (called without a graph).
    """
    for run in runs:
        if len(run) < 2:
            continue
        with torch.no_grad():
            parts = [(b.weight, loss(b)) for b in run]
            whole = loss(merged(run))
        total = sum(w for w, _ in parts)
        mean = sum(w * float(v) for w, v in parts) / total
        size = sum(w * abs(float(v)) for w, v in parts) / total
        eps = torch.finfo(whole.dtype).eps
        if not abs(float(whole) - mean) <= _ROUNDING * eps * max(size, eps):
            return False
    return True


class Stacking:
    """An objective's stacking: the check's outcome, remembered, and the runs it allows.

    A stacked run's graph holds at most max(64 MiB, budget/16): large enough that kernels are
    no longer small, small enough that a product's temporaries stay modest.

    Args:
        loss: the objective's ``loss(θ, batch)`` (called without a graph for the check).
        enabled: False never stacks (e.g. BatchNorm with batch statistics).
    """

    def __init__(self, loss: Callable[[Tensor, Batch], Tensor], enabled: bool = True) -> None:
        self.loss, self.enabled = loss, enabled
        self.agrees: bool | None = None  # the check's outcome, once it ran

    def stack(
        self, theta: Tensor, batches: list[Batch], graph_bytes: int | None, budget: int
    ) -> list[Batch]:
        """The batches with each stackable run as one batch (unchanged where not allowed).

        Args:
            theta: where the check runs if it has not yet.
            batches: consecutive batches, in order.
            graph_bytes: the bytes of all the data's gradient graphs (None: unknown, no cap).
            budget: the objective's memory budget.
        """
        share = max(_STACK_BYTES, budget // 16) / graph_bytes if graph_bytes else math.inf
        runs = mergeable_runs(batches, max_weight=share)
        if not self.enabled or len(runs) == len(batches):
            return batches
        if self.agrees is None:
            self.agrees = stacking_agrees(runs, lambda b: self.loss(theta, b))
        return [merged(run) for run in runs] if self.agrees else batches
