"""Watching a forward pass: which kinked ops ran, on what, and in which module.

:class:`KinkWatch` is a ``TorchFunctionMode``: while active it sees every torch function call,
and for those in :data:`~saddlescope.nonsmooth.ops.KINKED_OPS` records a :class:`KinkCall`
(the op's :class:`~saddlescope.nonsmooth.ops.Breaks`). Forward hooks on the objective's own
model copy name the module each call ran in; :func:`watching` installs them and removes them
on the way out, also when the forward raises, so the copy's hook dicts are left as they were
(the user's model is never involved). The mode is active only during a forward pass, never
while the caller works on what it recorded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from saddlescope.batch_loss import batch_loss, flat_leaf
from saddlescope.batches import Batch
from saddlescope.nonsmooth.ops import KINKED_OPS, UNMEASURED_OPS, Breaks, Unmeasured
from saddlescope.objective import Objective

__all__ = ["KinkCall", "KinkWatch", "hash_calls", "watch_batch", "watched_passes", "watching"]


@dataclass(frozen=True)
class KinkCall:
    """One kinked op call seen in a forward pass.

    Attributes:
        op: the op's name (``relu``, ``hardtanh``, ``max_pool2d``…).
        module: the module it ran in, "path (class)"; "(loss)" outside the model.
        breaks: its breakpoints, per element of its input.
    """

    op: str
    module: str
    breaks: Breaks


class KinkWatch(TorchFunctionMode):
    """Records the kinked op calls of a forward pass, and the module each ran in."""

    def __init__(self) -> None:
        super().__init__()
        self.path: list[str] = []
        self.calls: list[KinkCall] = []
        self.unmeasured: dict[str, None] = {}  # "op in module", in first-seen order

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        try:
            found, skipped = KINKED_OPS.get(func), UNMEASURED_OPS.get(func)
        except TypeError:  # an unhashable callable: not one of ours
            found = skipped = None
        if found is not None:
            self._record(found[0], found[1], args, kwargs)
        elif skipped is not None and _floating(args) and args[0].requires_grad:
            self.unmeasured[f"{skipped} in {self.module}"] = None
        return func(*args, **kwargs)

    @property
    def module(self) -> str:
        """The module running now (its path and class); "(loss)" outside the model."""
        return self.path[-1] if self.path else "(loss)"

    def _record(self, op: str, rule: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not _floating(args):
            return
        try:
            breaks = rule(args, kwargs)
        except (Unmeasured, RuntimeError, TypeError, ValueError, IndexError):
            self.unmeasured[f"{op} in {self.module}"] = None
            return
        if breaks is not None and breaks.z.numel():
            self.calls.append(KinkCall(op, self.module, breaks))

    def take(self) -> list[KinkCall]:
        """The calls recorded since the last take (and forget them)."""
        calls, self.calls = self.calls, []
        return calls


def _floating(args: tuple[Any, ...]) -> bool:
    return bool(args) and isinstance(args[0], Tensor) and args[0].is_floating_point()


def _enter(watch: KinkWatch, name: str, module: nn.Module, args: Any) -> None:
    watch.path.append(f"{name or '(model)'} ({type(module).__name__})")


def _leave(watch: KinkWatch, module: nn.Module, args: Any, output: Any) -> None:
    if watch.path:
        watch.path.pop()


@contextmanager
def watching(module: nn.Module) -> Iterator[KinkWatch]:
    """A :class:`KinkWatch` active, with hooks naming the modules; hooks removed on the way out.

    Args:
        module: the model whose submodules get the naming hooks (the objective's own copy).
    """
    watch = KinkWatch()
    handles = []
    try:
        for name, m in module.named_modules():
            handles.append(m.register_forward_pre_hook(partial(_enter, watch, name)))
            handles.append(m.register_forward_hook(partial(_leave, watch), always_call=True))
        with watch:
            yield watch
    finally:
        for h in handles:
            h.remove()


def watch_batch(
    obj: Objective, leaf: Tensor, batch: Batch
) -> tuple[list[KinkCall], tuple[str, ...]]:
    """One batch's forward pass at ``leaf``, watched: its live kinked calls and unmeasured ops.

    Live calls are those whose z depends on θ; their graphs are held.

    Args:
        obj: the objective.
        leaf: θ as a :func:`~saddlescope.batch_loss.flat_leaf`.
        batch: one of the objective's batches.
    """
    with torch.inference_mode(False), torch.enable_grad(), watching(obj.module) as watch:
        batch_loss(obj.module, obj.unflatten(leaf), batch, obj.loss_fn)
    live = [c for c in watch.take() if c.breaks.z.requires_grad]
    return live, tuple(watch.unmeasured)


def watched_passes(
    obj: Objective, theta: Tensor
) -> Iterator[tuple[int, list[KinkCall], Tensor, tuple[str, ...]]]:
    """Per batch: its index, its live kinked calls (graphs held), the leaf, its unmeasured ops.

    One batch's graph at a time: the caller is done with a batch before the next is built.
    Nothing is watched while the caller runs.

    Args:
        obj: the objective (held or streamed data).
        theta: the parameters.
    """
    for b in obj.data:
        leaf = flat_leaf(theta)
        live, unmeasured = watch_batch(obj, leaf, b)
        yield b.index, live, leaf, unmeasured


def hash_calls(hasher: Any, calls: list[KinkCall]) -> None:
    """Feed each call's op, shape and pieces to ``hasher`` (an activation pattern's hash).

    Args:
        hasher: a ``hashlib`` hash object.
        calls: the calls, in the order they ran.
    """
    for c in calls:
        hasher.update(f"{c.op}|{tuple(c.breaks.piece.shape)}|".encode())
        hasher.update(c.breaks.piece.detach().cpu().contiguous().numpy().tobytes())


def joined_pattern(parts: list[str]) -> str:
    """One activation pattern from the ranks' patterns of their shards, in rank order.

    Args:
        parts: each rank's pattern hash ("" when smooth); one part is returned as it is.
    """
    if len(parts) == 1 or not any(parts):
        return parts[0]
    return hashlib.blake2b("|".join(parts).encode(), digest_size=16).hexdigest()
