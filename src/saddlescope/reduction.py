"""How an objective's sums over data are completed: in this process, or across ranks.

An :class:`~saddlescope.objective.Objective` sums over the data it holds. When the data is
split across processes (:class:`~saddlescope.distributed.DistributedObjective`), each rank's
share is added up by one all-reduce per evaluation, scaled by the rank's share of the total
weight: L(θ) = Σ_r (W_r / W)·L_r(θ), and likewise ∇L and every H·v. The same sum, bit for bit,
reaches every rank, so every algorithm takes the same decisions on every rank; the few
decisions that depend on something local (a clock, a timed product, a rank's own data) are
agreed explicitly through :meth:`Reducer.any` and :meth:`Reducer.broadcast`.

:data:`LOCAL` is the single-process reducer: every method returns its input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor

from saddlescope.errors import DistributedError

__all__ = ["LOCAL", "LocalReducer", "ProcessGroupReducer", "Reducer"]

T = TypeVar("T")


class Reducer(Protocol):
    """Completes sums over data held in several places; agrees on local decisions.

    Attributes:
        rank: this process's rank (0 in a single process).
        ranks: how many processes share the data (1 in a single process).
    """

    rank: int
    ranks: int

    def sum(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        """Each tensor, this rank's share of a sum, completed over all ranks (one collective)."""
        ...

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is True on any."""
        ...

    def broadcast(self, value: T) -> T:
        """Rank 0's value, on every rank (a pickled, in-memory object).

        Args:
            value: this rank's value.
        """
        ...

    def gather(self, value: T) -> list[T]:
        """Every rank's value, in rank order, on every rank.

        Args:
            value: this rank's value.
        """
        ...


class LocalReducer:
    """The reducer of an objective that holds all its data: every method returns its input."""

    rank = 0
    ranks = 1

    def sum(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        """The tensors themselves."""
        return tensors

    def any(self, flag: bool) -> bool:
        """``flag`` itself."""
        return flag

    def broadcast(self, value: T) -> T:
        """``value`` itself."""
        return value

    def gather(self, value: T) -> list[T]:
        """``[value]``.

        Args:
            value: the value.
        """
        return [value]


LOCAL = LocalReducer()


class ProcessGroupReducer:
    """Sums and agreements over a ``torch.distributed`` process group.

    Args:
        group: the process group (None: the default group, which must be initialised).

    ``scale`` is what this rank's shares are multiplied by before the all-reduce, W_r / W: 1
    until the objective, once it knows every rank's weight, sets it.
    """

    def __init__(self, group: Any = None) -> None:
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized()):
            raise DistributedError(
                "torch.distributed is not initialised: call "
                "torch.distributed.init_process_group(...) on every rank first (torchrun sets "
                "up its environment; see docs/distributed.md)"
            )
        self.group = group
        self.rank = dist.get_rank(group)
        self.ranks = dist.get_world_size(group)
        self.scale = 1.0

    def _run(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except RuntimeError as err:
            raise DistributedError(
                f"rank {self.rank} of {self.ranks}: the collective for {what} failed ({err}). "
                "Another rank has failed (its own error is in its output) or has not arrived "
                "within the process group's timeout (init_process_group(timeout=...))"
            ) from err

    def sum(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        """The tensors scaled by W_r / W and all-reduced as one flat buffer."""
        flat = torch.cat([t.reshape(-1) for t in tensors]) * self.scale
        self._run("a sum", lambda: torch.distributed.all_reduce(flat, group=self.group))
        out, start = [], 0
        for t in tensors:
            out.append(flat[start : start + t.numel()].reshape(t.shape))
            start += t.numel()
        return tuple(out)

    def maximum(self, t: Tensor) -> Tensor:
        """The elementwise maximum of ``t`` over the ranks (a new tensor; unscaled)."""
        out = t.clone()
        op = torch.distributed.ReduceOp.MAX
        self._run("a maximum", lambda: torch.distributed.all_reduce(out, op=op, group=self.group))
        return out

    def any(self, flag: bool) -> bool:
        """True when any rank's ``flag`` is."""
        t = torch.tensor([float(flag)], device=self._device())
        op = torch.distributed.ReduceOp.MAX
        self._run("a decision", lambda: torch.distributed.all_reduce(t, op=op, group=self.group))
        return bool(t[0] > 0)

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value``."""
        box = [value]
        src = torch.distributed.get_global_rank(self.group, 0) if self.group is not None else 0
        self._run(
            "rank 0's choice",
            lambda: torch.distributed.broadcast_object_list(box, src=src, group=self.group),
        )
        return box[0]

    def gather(self, value: T) -> list[T]:
        """Every rank's ``value``, in rank order."""
        out: list[Any] = [None] * self.ranks
        self._run(
            "a gather", lambda: torch.distributed.all_gather_object(out, value, group=self.group)
        )
        return out

    def _device(self) -> torch.device:
        backend = torch.distributed.get_backend(self.group)
        if backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
