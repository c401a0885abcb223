"""One objective over data split across processes (``torch.distributed``).

Each rank holds its shard of the data — a ``DataLoader`` over a
``DistributedSampler(shuffle=False)``, or a shard given explicitly (:func:`shard_slice`) — and
the same model. :class:`DistributedObjective` is an :class:`~saddlescope.objective.Objective`
whose sums over data are completed across the ranks: L, ∇L and every H·v are the weighted sums
of the ranks' shares, one all-reduce per evaluation (a block of k products: one all-reduce),

    L(θ) = Σ_r (W_r / W) · L_r(θ),      W_r the shard's total weight, W = Σ_r W_r,

so each is the single-process objective on all the data, to rounding. Every rank gets the same
bits back, holds the same θ and takes the same decisions, so every algorithm (Lanczos, SLQ, the
inertia estimate, ``classify``, ``find_critical_point``, escapes) runs unchanged on it; the few
decisions that rest on something local (a clock, a timed product, a rank's own data) are agreed
through :mod:`saddlescope.reduction`.

Launch one process per device with ``torchrun`` (docs/distributed.md has a multi-node launch)::

    torchrun --nproc-per-node 2 analyse.py

A rank that fails, or does not arrive within the process group's timeout, ends the job with a
:class:`~saddlescope.errors.DistributedError` on the others, never a hang.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from saddlescope.batch_loss import LossFn
from saddlescope.errors import DistributedError, InvalidInputError
from saddlescope.objective import Objective
from saddlescope.reduction import ProcessGroupReducer

__all__ = ["DistributedObjective", "shard_slice"]


class DistributedObjective(Objective):
    """An :class:`~saddlescope.objective.Objective` over data split across ranks.

    Every rank constructs it, with the same model (the same θ: checked) and its own shard, and
    then calls the same algorithms with the same arguments (seeds included); each gets the
    same results.

    Args:
        model: the model, identical on every rank (build it from one seed, or load one
            ``state_dict``); copied and never modified, as for ``Objective``.
        loss_fn: as for ``Objective``.
        data: this rank's shard: a ``DataLoader`` over a ``DistributedSampler(shuffle=False)``
            (one that pads the dataset by repeating samples is refused: they would count
            twice), or batches of this rank's samples (e.g. ``x[shard_slice(len(x))]``).
            Shards may differ in size; each weighs by its total weight.
        group: the process group (default: the default group, which must be initialised).
        **options: every keyword of ``Objective`` (dtype, device, memory_budget, …).
    """

    reducer: ProcessGroupReducer

    def __init__(
        self, model: nn.Module, loss_fn: LossFn | None, data: Any, *, group: Any = None,
        **options: Any,
    ) -> None:  # fmt: skip
        self.reducer = ProcessGroupReducer(group)
        _check_sampler(data, self.reducer)
        super().__init__(model, loss_fn, data, **options)
        self._check_same_theta()

    def _set_data(self, data: Any) -> None:
        """Read this rank's shard; one gather tells every rank how all the reads went."""
        failure: Exception | None = None
        try:
            super()._set_data(data)
        except Exception as err:  # this rank's own: the others must hear of it, not wait
            failure = err
        if failure is not None:
            self.reducer.gather((f"{type(failure).__name__}: {failure}", 0.0, 0, 0))
            raise failure
        mine = self.data
        said = self.reducer.gather((None, mine.total_weight, mine.num_samples, len(mine)))
        for rank, (message, *_) in enumerate(said):
            if message is not None:
                raise DistributedError(
                    f"rank {rank} could not read its shard of the data: {message}"
                )
        self._total_weight = sum(w for _, w, _, _ in said)
        self.reducer.scale = mine.total_weight / self._total_weight
        self.num_samples = sum(n for _, _, n, _ in said)
        self._num_batches = sum(b for _, _, _, b in said)

    def refresh(self, model: nn.Module, data: Any = None) -> Tensor:
        """As :meth:`Objective.refresh`, on every rank together (θ checked to agree).

        Args:
            model: the model, with the same values on every rank.
            data: this rank's new shard (None: keep the data).
        """
        theta = super().refresh(model, data)
        self._check_same_theta()
        return theta

    def _check_same_theta(self) -> None:
        """Every rank holds the same number of parameters with the same values, or an error."""
        sizes = self.reducer.gather(self.num_params)
        if len(set(sizes)) > 1:
            raise DistributedError(
                f"the ranks' models differ in size ({', '.join(map(str, sizes))} parameters by "
                "rank): build the same model, with the same param_filter, on every rank"
            )
        n = self.num_params
        both = self.reducer.maximum(torch.cat([self._theta0, -self._theta0]))
        spread = float((both[:n] + both[n:]).max())
        if spread > 0:
            raise DistributedError(
                f"the ranks hold different parameters (they differ by up to {spread:.3g}): "
                "seed the model the same on every rank, or load one state_dict on each"
            )

    @property
    def batches(self) -> tuple[Any, ...]:
        """Refused: a distributed objective's batches are spread over the ranks."""
        raise InvalidInputError(
            "a DistributedObjective's batches are split across the ranks; what needs every "
            "batch in one place (e.g. lifting) needs an Objective over all the data"
        )

    def describe(self) -> dict[str, Any]:
        """As :meth:`Objective.describe`, over all ranks, with their number (no collective)."""
        return {
            **super().describe(),
            "num_batches": self._num_batches,
            "total_weight": self._total_weight,
            "ranks": self.reducer.ranks,
        }


def _check_sampler(data: Any, ranks: ProcessGroupReducer) -> None:
    """Refuse a ``DistributedSampler`` that pads (samples counted twice) or is for other ranks."""
    sampler = getattr(data, "sampler", None)
    if not isinstance(sampler, torch.utils.data.DistributedSampler):
        return
    if (sampler.num_replicas, sampler.rank) != (ranks.ranks, ranks.rank):
        raise InvalidInputError(
            f"the DistributedSampler is for rank {sampler.rank} of {sampler.num_replicas}, but "
            f"this process is rank {ranks.rank} of {ranks.ranks} in the objective's group: "
            "make it with num_replicas and rank of that group"
        )
    size = len(sampler.dataset)  # type: ignore[arg-type]
    if not sampler.drop_last and sampler.total_size > size:
        extra = sampler.total_size - size
        raise InvalidInputError(
            f"the DistributedSampler pads the {size:,} samples to {sampler.total_size:,} by "
            f"repeating {extra}, which would count them twice in L: use a dataset whose size "
            f"divides by {sampler.num_replicas}, drop_last=True (drops {extra} samples from L), "
            "or explicit shards (saddlescope.shard_slice)"
        )


def shard_slice(num_samples: int, rank: int | None = None, ranks: int | None = None) -> slice:
    """This rank's contiguous share of ``num_samples`` samples; shares differ by at most one.

    Args:
        num_samples: how many samples there are in all.
        rank: this process's rank (default: its rank in the default group).
        ranks: how many ranks share them (default: the default group's size).

    >>> shard_slice(10, rank=2, ranks=3)
    slice(7, 10, None)
    """
    if rank is None or ranks is None:
        if not torch.distributed.is_initialized():
            raise DistributedError("give rank and ranks, or initialise torch.distributed first")
        rank = torch.distributed.get_rank() if rank is None else rank
        ranks = torch.distributed.get_world_size() if ranks is None else ranks
    if not 0 <= rank < ranks or num_samples < ranks:
        raise InvalidInputError(
            f"cannot give rank {rank} of {ranks} a share of {num_samples} samples: each of the "
            "ranks needs at least one sample, and 0 ≤ rank < ranks"
        )
    base, extra = divmod(num_samples, ranks)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))
