"""An objective's gradient graphs: how large they are, and which batches they are built for.

A Hessian-vector product runs a backward pass through a batch's gradient graph, and a gradient
pass builds one graph per batch; both are cheaper when runs of batches of one shape are
stacked into one (:mod:`saddlescope.merging`). :class:`GraphPlan` holds what an objective
decides about its graphs: their size, measured once on the first batch (sizes follow the
shapes, not θ), and the batches a gradient pass or a Hessian operator builds graphs for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import Tensor

from saddlescope.batches import Batch, Data
from saddlescope.hessian import graph_size
from saddlescope.merging import Stacking

__all__ = ["GraphPlan"]


class GraphPlan:
    """Graph sizes and stacked batches for one objective's data.

    Args:
        build: ``build(θ, batch) -> (leaf, g)``, the gradient with its graph kept.
        data: the objective's data.
        stacking: the objective's stacking rule (checked once, remembered).
        budget: the objective's memory budget in bytes.
    """

    def __init__(
        self,
        build: Callable[[Tensor, Batch], tuple[Tensor, Tensor]],
        data: Data,
        stacking: Stacking,
        budget: int,
    ) -> None:
        self.build, self.data, self.stacking, self.budget = build, data, stacking, budget
        self._memo: tuple[int | None] | None = None

    def graph_bytes(self, theta: Tensor) -> int | None:
        """Estimated bytes the graphs of all batches hold (None if unmeasurable), measured once.

        Args:
            theta: where to build the measured graph (a checked θ).
        """
        if self._memo is None:
            first = self.data.first()
            nbytes = graph_size(lambda: self.build(theta, first), first)
            self._memo = (None if nbytes is None else int(nbytes / first.weight),)
        return self._memo[0]

    def stacked(self, theta: Tensor, batches: list[Batch]) -> list[Batch]:
        """The batches with each stackable run as one batch (:class:`Stacking`).

        Args:
            theta: where the stacking check runs if it has not yet.
            batches: consecutive batches of the data, in order.
        """
        graphs = self.graph_bytes(theta) if len(batches) > 1 else None
        return self.stacking.stack(theta, batches, graphs, self.budget)

    def for_gradient(self, theta: Tensor) -> Iterable[Batch]:
        """One gradient pass's batches: stacked where held and their graphs fit the budget.

        Args:
            theta: the parameters (a checked θ).
        """
        data = self.data
        if not data.held or len(data) == 1:
            return data
        graphs = self.graph_bytes(theta)
        if graphs is None or graphs > self.budget:
            return data
        return self.stacked(theta, list(data))
