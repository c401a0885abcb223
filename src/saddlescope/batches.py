"""The data model: what a batch is, what it weighs, and whether the data is held or streamed.

A batch is whatever the user's loader yields:

* ``(inputs, targets)`` — a pair of tensors: ``model(inputs)``, ``loss_fn(outputs, targets)``;
* ``(x1, …, xk, targets)`` — a tuple or list of several inputs, then the targets:
  ``model(x1, …, xk)``, ``loss_fn(outputs, batch)``;
* ``{"input_ids": …, "attention_mask": …, "labels": …}`` — a dict (HuggingFace style):
  ``model(**batch)``, ``loss_fn(outputs, batch)``;

and with ``loss_fn=None`` the model gets the whole batch and its own loss is used (HF's
``outputs.loss``). Each batch b has a weight w_b — by default its number of samples (the leading
dimension of its first tensor), or what a ``batch_weight`` function says (e.g. its number of
non-padding label tokens) — and the objective is Σ_b w_b·ℓ_b / Σ_b w_b, the mean over all the
data of a per-batch mean loss.

Data that fits the budget is copied once and held on the device (:class:`HeldData`); larger data
is read from the user's re-iterable loader on every pass (:class:`StreamedData`), never copied
whole. Either way the loader must give the same batches on every pass: a fingerprint of each
batch is taken at construction and checked on every later pass, so a shuffling loader is refused
instead of silently giving another objective.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from saddlescope.checks import check_bool
from saddlescope.errors import InvalidInputError, NonFiniteError

__all__ = ["Batch", "BatchKind", "Data", "HeldData", "StreamedData", "hold_bytes", "load_data"]

BatchKind = Literal["pair", "tuple", "dict"]
BatchWeight = Callable[[Any], float]
Fingerprint = tuple[Any, ...]
_SHUFFLE_HINT = (
    "saddlescope needs the same batches on every pass; pass a loader with shuffle=False (or a "
    "fixed sampler), or a list of batches"
)


@dataclass(frozen=True, eq=False)
class Batch:
    """One batch as the objective sees it: the user's structure (our copy) and its weight.

    Attributes:
        data: the batch's structure — a pair, a tuple or a dict — with its tensors in our dtype
            (floating point) and on our device.
        kind: "pair", "tuple" or "dict".
        weight: w_b / Σ w, its share of the objective.
        index: its position in the data.
    """

    data: Any
    kind: BatchKind
    weight: float
    index: int

    @property
    def inputs(self) -> Tensor:
        """The inputs of an ``(inputs, targets)`` pair."""
        return self._pair()[0]

    @property
    def targets(self) -> Tensor:
        """The targets of an ``(inputs, targets)`` pair."""
        return self._pair()[1]

    def _pair(self) -> tuple[Tensor, Tensor]:
        if self.kind != "pair":
            raise InvalidInputError(
                f"batch {self.index} is a {self.kind}, not an (inputs, targets) pair; this "
                "analysis needs pairs"
            )
        return self.data[0], self.data[1]

    def tensors(self) -> list[Tensor]:
        """Every tensor of the batch, in order."""
        return list(_tensors(self.data))


class Data:
    """The batches of an objective, in a fixed order, with their weights.

    Attributes:
        weights: each batch's share w_b / Σ w (they sum to 1).
        total_weight: Σ w, in the weights' own unit (samples, tokens…).
        num_samples: the number of samples (leading dimensions summed).
        held: True when the batches are held in memory, False when streamed.
    """

    weights: tuple[float, ...]
    total_weight: float
    num_samples: int
    held: bool

    def __iter__(self) -> Iterator[Batch]:
        """The batches, in order (a pass over the loader when streamed)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.weights)

    def first(self) -> Batch:
        """The first batch."""
        return next(iter(self))


class HeldData(Data):
    """Batches copied once and held on the device.

    Args:
        batches: the batches, already cast.
        num_samples: the number of samples.
        total_weight: Σ w.
    """

    def __init__(self, batches: list[Batch], num_samples: int, total_weight: float) -> None:
        self.batches = tuple(batches)
        self.weights = tuple(b.weight for b in batches)
        self.num_samples, self.total_weight, self.held = num_samples, total_weight, True

    def __iter__(self) -> Iterator[Batch]:
        return iter(self.batches)

    def first(self) -> Batch:
        """The first batch (no pass over anything)."""
        return self.batches[0]


class StreamedData(Data):
    """Batches read from the user's loader on every pass, checked against their fingerprints.

    Args:
        loader: the user's re-iterable data.
        dtype: the dtype floating tensors are cast to.
        device: where batches are moved.
        fingerprints: each batch's fingerprint from the first pass.
        weights: each batch's share w_b / Σ w.
        num_samples: the number of samples.
        total_weight: Σ w.
    """

    def __init__(
        self,
        loader: Iterable[Any],
        dtype: torch.dtype,
        device: torch.device,
        fingerprints: list[Fingerprint],
        weights: list[float],
        num_samples: int,
        total_weight: float,
    ) -> None:
        self.loader, self.dtype, self.device = loader, dtype, device
        self.fingerprints = tuple(fingerprints)
        self.weights = tuple(weights)
        self.num_samples, self.total_weight, self.held = num_samples, total_weight, False

    def __iter__(self) -> Iterator[Batch]:
        count = 0
        for i, item in enumerate(self.loader):
            if i >= len(self.fingerprints) or fingerprint(item) != self.fingerprints[i]:
                raise InvalidInputError(
                    f"the data gave a different batch {i} on a later pass; {_SHUFFLE_HINT}"
                )
            count += 1
            if self.weights[i] > 0:
                data = cast_batch(item, self.dtype, self.device)
                yield Batch(data, kind_of(item, i), self.weights[i], i)
        if count != len(self.fingerprints):
            raise InvalidInputError(
                f"the data gave {count} batches on a later pass, {len(self.fingerprints)} on the "
                f"first; {_SHUFFLE_HINT}"
            )


def kind_of(item: Any, index: int) -> BatchKind:
    """What structure a batch has, or a clear error naming what is wrong.

    Args:
        item: one batch as the user's loader yields it.
        index: its position, for the message.
    """
    if isinstance(item, Mapping):
        if not any(isinstance(v, Tensor) for v in item.values()):
            raise InvalidInputError(f"batch {index} is a dict without any tensor value")
        bad = [k for k in item if not isinstance(k, str)]
        if bad:
            raise InvalidInputError(
                f"batch {index}: dict keys must be strings (model(**batch)), got {bad[0]!r}"
            )
        return "dict"
    if isinstance(item, (tuple, list)) and len(item) >= 2:
        if not isinstance(item[0], Tensor):
            raise InvalidInputError(
                f"batch {index}: its first element (the model's input) must be a tensor, got "
                f"{type(item[0]).__name__}"
            )
        return "pair" if len(item) == 2 and isinstance(item[1], Tensor) else "tuple"
    raise InvalidInputError(
        f"batch {index} of data is a {type(item).__name__}; a batch must be an (inputs, targets) "
        "pair of tensors, a tuple/list of several inputs then targets, or a dict of tensors"
    )


def _tensors(data: Any) -> Iterator[Tensor]:
    items = data.values() if isinstance(data, Mapping) else data
    for v in items:
        if isinstance(v, Tensor):
            yield v


def _where(data: Any, kind: BatchKind) -> list[str]:
    """Names of the batch's entries for messages: dict keys, or positions."""
    if kind == "dict":
        return [repr(k) for k in data]
    if kind == "pair":
        return ["inputs", "targets"]
    return [f"element {i}" for i in range(len(data))]


def cast_batch(item: Any, dtype: torch.dtype, device: torch.device) -> Any:
    """Our copy of a batch: tensors on ``device`` (floating ones in ``dtype``), the rest as is.

    Args:
        item: one batch as the user's loader yields it.
        dtype: the floating-point dtype.
        device: the device.
    """

    def cast(v: Any) -> Any:
        if not isinstance(v, Tensor):
            return v
        t = v.detach().to(device, copy=True)
        return t.to(dtype) if t.is_floating_point() else t

    if isinstance(item, Mapping):
        return {k: cast(v) for k, v in item.items()}
    return tuple(cast(v) for v in item)


def fingerprint(item: Any) -> Fingerprint:
    """A cheap summary of a batch that changes when its contents or order change.

    Per tensor: its shape, dtype, the sum of its entries and a few strided entries.

    Args:
        item: one batch as the user's loader yields it.
    """
    parts: list[Any] = []
    for t in _tensors(item):
        flat = t.detach().reshape(-1)
        step = max(1, flat.numel() // 7)
        sample = flat[::step][:8].double().cpu().tolist() if flat.numel() else []
        total = float(flat.double().sum()) if flat.numel() else 0.0
        parts.append((tuple(t.shape), str(t.dtype), total, tuple(sample)))
    return tuple(parts)


def _check(item: Any, kind: BatchKind, index: int) -> int:
    """Validate one (cast) batch; return its number of samples."""
    entries = zip(_where(item, kind), _entries(item))
    tensors = [(w, v) for w, v in entries if isinstance(v, Tensor)]
    first = tensors[0][1]
    if first.ndim == 0:
        raise InvalidInputError(
            f"batch {index}: its first tensor ({tensors[0][0]}) has no leading (sample) dimension"
        )
    if kind == "pair" and (item[1].ndim == 0 or item[0].shape[0] != item[1].shape[0]):
        raise InvalidInputError(
            f"batch {index}: inputs and targets need the same leading (sample) dimension, "
            f"got shapes {tuple(item[0].shape)} and {tuple(item[1].shape)}"
        )
    for where, t in tensors:
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise NonFiniteError(f"batch {index}: {where} contain NaN or Inf; clean the data")
    return int(first.shape[0])


def _entries(item: Any) -> list[Any]:
    return list(item.values()) if isinstance(item, Mapping) else list(item)


def _weight(item: Any, samples: int, batch_weight: BatchWeight | None, index: int) -> float:
    if batch_weight is None:
        return float(samples)
    try:
        w = float(batch_weight(item))
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"batch_weight failed on batch {index}: {err}; it must return a number ≥ 0"
        ) from err
    if not w >= 0 or w == float("inf"):
        raise InvalidInputError(
            f"batch_weight gave {w} for batch {index}; it must be ≥ 0 and finite"
        )
    return w


def _as_batches(data: Any) -> Iterable[Any]:
    """The user's data as an iterable of batches (a single batch is a list of one)."""
    if isinstance(data, Mapping) or (
        isinstance(data, (tuple, list)) and len(data) >= 2 and isinstance(data[0], Tensor)
    ):
        return [data]
    if isinstance(data, Tensor) or not isinstance(data, Iterable):
        raise InvalidInputError(
            "data must be an (inputs, targets) pair of tensors, a dict batch, or an iterable of "
            f"batches (a list or a DataLoader), got {type(data).__name__}"
        )
    return data


def hold_bytes(hold_data: Any, memory_budget: int) -> int:
    """The most bytes of data to hold in memory for ``Objective(hold_data=...)``.

    Args:
        hold_data: None (hold what fits half the budget), True (hold all) or False (stream).
        memory_budget: the objective's memory budget in bytes.
    """
    choice = check_bool("hold_data", hold_data, allow_none=True)
    return {None: memory_budget // 2, True: sys.maxsize, False: -1}[choice]


def load_data(
    data: Any,
    dtype: torch.dtype,
    device: torch.device,
    *,
    batch_weight: BatchWeight | None = None,
    hold_bytes: int,
) -> Data:
    """Read the user's data once: held when it fits ``hold_bytes``, else streamed.

    The first pass validates every batch, weighs it and takes its fingerprint; a loader (not a
    list) is then read a second time, fingerprints only, to make sure it gives the same batches
    on every pass. A one-pass iterator (a generator) is held, as it cannot be read again.

    Args:
        data: an ``(inputs, targets)`` pair, a dict batch, or an iterable of batches.
        dtype: the floating-point dtype of our copies.
        device: where batches are used.
        batch_weight: the weight of a batch (default: its number of samples).
        hold_bytes: the most bytes of data to hold; more is streamed.
    """
    source = _as_batches(data)
    held: list[tuple[Any, BatchKind]] = []
    prints: list[Fingerprint] = []
    raw_weights: list[float] = []
    samples, nbytes = 0, 0
    for i, item in enumerate(source):
        kind = kind_of(item, i)
        ours = cast_batch(item, dtype, device)
        samples_i = _check(ours, kind, i)
        prints.append(fingerprint(item))
        raw_weights.append(_weight(ours, samples_i, batch_weight, i))
        samples += samples_i
        nbytes += sum(t.numel() * t.element_size() for t in _tensors(ours))
        if nbytes <= hold_bytes:
            held.append((ours, kind))
        else:
            held.clear()  # too much to hold: stream every pass instead
    total = sum(raw_weights)
    if not prints or total == 0:
        raise InvalidInputError("data is empty: it holds no samples (or all weights are 0)")
    one_pass = iter(source) is source  # a generator or iterator: it cannot be read again
    if one_pass and nbytes > hold_bytes:
        raise InvalidInputError(
            "data is a one-pass iterator (e.g. a generator) too large to hold in half the memory "
            "budget; pass a re-iterable loader (a DataLoader or a list), which is streamed"
        )
    if not one_pass and not isinstance(source, (list, tuple)):
        again = [fingerprint(item) for item in source]
        if again != prints:
            raise InvalidInputError(
                f"the data gave different batches on a second pass; {_SHUFFLE_HINT}"
            )
    weights = [w / total for w in raw_weights]
    if nbytes > hold_bytes:
        return StreamedData(source, dtype, device, prints, weights, samples, total)
    batches = [Batch(d, k, w, i) for i, ((d, k), w) in enumerate(zip(held, weights)) if w > 0]
    return HeldData(batches, samples, total)
