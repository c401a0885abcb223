"""H(θ) of an Objective as an operator: cached gradient graphs under a memory budget.

:class:`HessianOperator` multiplies by H(θ) at one fixed θ with reverse-over-reverse
Hessian-vector products: each batch's gradient graph is built once and kept, for as many
batches of held data as the memory budget holds (the others are rebuilt for every product), and a
product is one backward pass through it. Kept batches of one shape share one graph where the loss
allows (:mod:`saddlescope.merging`). Blocks of vectors go through one batched backward where that
pays (checked once against a single product). :func:`dense_hessian` assembles the n×n Hessian from
products on the unit basis, block by block within the budget.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from saddlescope.errors import HessianTooLargeError
from saddlescope.kernels import missing_derivative
from saddlescope.operators import check_block, symmetrize, unit_block, working_dtype

if TYPE_CHECKING:
    from saddlescope.batches import Batch
    from saddlescope.objective import Objective

__all__ = [
    "HessianOperator",
    "batches_that_fit",
    "check_dense_fits",
    "columns_per_block",
    "dense_hessian",
    "dense_hessian_fits",
    "graph_size",
    "hessian_block_columns",
]

Pullback = Callable[[Tensor], Tensor]
_LOOP_GRAPH_BYTES = 256 * 1024  # CPU: from this graph size on, a block is a loop of products
_CHUNK_BYTES = 64 * 1024**2  # bytes of basis vectors held at once by the dense Hessian on the CPU


class HessianOperator:
    """H(θ) at one fixed θ as a torch operator: ``op @ v`` (n,) or ``op @ V`` (n, k).

    Counts its products in :attr:`num_products` (a block of k vectors counts k).
    :attr:`cached_batches` says how many batches keep their gradient graph (see
    :meth:`Objective.hessian_operator`); the others rebuild theirs for every product. Streamed
    data keeps none by default: it is streamed because it is over half the budget, a graph
    holds far more than its batch's data, so only a small share could be kept, and keeping it
    would make the peak memory grow with the data.

    Args:
        objective: the objective whose Hessian this is.
        theta: the parameters (copied: later edits of the caller's θ do not leak in).
        cache: True keeps every batch's gradient graph, False none, None (default): held data
            as many as fit ``budget`` in order (one batch always), streamed data none (unless
            it is a single batch).
        budget: bytes the kept graphs may take (default: the objective's memory budget).
        on_products: called with the number of products after each product (a block of k
            counts k), e.g. to drive a progress bar; also by :meth:`dense`.
    """

    def __init__(
        self,
        objective: Objective,
        theta: Tensor,
        *,
        cache: bool | None = None,
        budget: int | None = None,
        on_products: Callable[[int], None] | None = None,
    ) -> None:
        self.objective = objective
        self.on_products = on_products
        self.theta = theta.detach().clone()  # our own: later edits of the caller's θ don't leak in
        self.shape = (objective.num_params, objective.num_params)
        self.dtype = working_dtype(objective.dtype)  # float32 for a half-precision model
        self.device = objective.device
        self.memory_budget = objective.memory_budget
        self.num_products = 0
        self._cache, self._budget = cache, budget
        self._built: list[tuple[float, Pullback]] | None = None
        self._kept = 0

    def _graphs(self) -> list[tuple[float, Pullback]]:
        """(weight, pullback) of the kept graphs, built at the first product.

        The kept batches' runs of one shape are stacked into one graph each where the loss
        allows it (see :meth:`Objective.graph_batches`).
        """
        if self._built is None:
            self._kept = self._kept_count()
            kept = list(itertools.islice(self.objective.data, self._kept))
            stacked = self.objective.graph_batches(self.theta, kept)
            self._built = [(b.weight, self._pullback(b)) for b in stacked]
        return self._built

    def _kept_count(self) -> int:
        objective, cache = self.objective, self._cache
        if cache is not None:
            return len(_positive(objective.data.weights)) if cache else 0
        if not objective.data.held and len(_positive(objective.data.weights)) > 1:
            return 0  # streamed: peak memory must not grow with the data (see the class doc)
        room = objective.memory_budget if self._budget is None else self._budget
        return batches_that_fit(objective, self.theta, room)

    @property
    def cached_batches(self) -> int:
        """How many of the data's batches keep their gradient graph between products."""
        self._graphs()
        return self._kept

    @property
    def num_graphs(self) -> int:
        """How many gradient graphs are kept (stacked batches share one)."""
        return len(self._graphs())

    def _pullback(self, batch: Batch) -> Callable[[Tensor], Tensor]:
        """V ↦ H_b·V for one batch, through its gradient graph built once (n or n×k blocks).

        Plain ``torch.autograd`` on a flat leaf, which skips the wrapping ``torch.func.vjp``
        pays per product. A block of k vectors is one batched backward (``is_grads_batched``),
        except on the CPU for batches whose graph holds ≥ 256 KiB, where k single products
        measured faster per column while small graphs are all call overhead (see
        docs/benchmarks.md). The rule depends on shapes only, so results never depend on
        timings. The first batched block is checked against a single product (one product more,
        once per graph); where the batched backward fails or disagrees (a missing or wrong
        batching rule, e.g. GroupNorm's double backward), blocks become loops of single products.
        """
        obj = self.objective
        leaf, g = obj.gradient_graph(self.theta, batch)
        if not g.requires_grad:  # the loss is at most linear in θ: H_b = 0
            return torch.zeros_like
        checked = [False]  # the batched path's first column was compared with a single product
        loop_blocks: list[bool | None] = [None]  # decided at the first block; can turn itself on

        def product(v: Tensor) -> Tensor:
            try:
                return torch.autograd.grad(
                    g, leaf, v, retain_graph=True, allow_unused=True, materialize_grads=True
                )[0]
            except RuntimeError as err:
                raise missing_derivative(err) or err from err

        def batched(V: Tensor) -> Tensor:
            grads = torch.autograd.grad(
                g,
                leaf,
                V.mT.contiguous(),
                retain_graph=True,
                is_grads_batched=True,
                allow_unused=True,
                materialize_grads=True,
            )[0]
            return grads.mT

        def pullback(V: Tensor) -> Tensor:
            if V.ndim == 1:
                return product(V)
            if loop_blocks[0] is None:
                loop_blocks[0] = obj.device.type == "cpu" and (
                    (obj.graph_bytes(self.theta) or 0) * batch.weight >= _LOOP_GRAPH_BYTES
                )
            if not loop_blocks[0]:
                try:
                    out = batched(V)
                except RuntimeError:  # no (or a broken) batching rule, e.g. GroupNorm's
                    out = None
                if out is not None and (checked[0] or _agrees(out[:, 0], product(V[:, 0]))):
                    checked[0] = True
                    return out
                loop_blocks[0] = True
            return torch.stack([product(V[:, j]) for j in range(V.shape[1])], dim=1)

        return pullback

    def _pullbacks_iter(self) -> Iterator[tuple[float, Pullback]]:
        yield from self._graphs()
        if self._kept < len(_positive(self.objective.data.weights)):
            for b in itertools.islice(self.objective.data, self._kept, None):
                yield b.weight, self._pullback(b)

    def __matmul__(self, v: Tensor) -> Tensor:
        obj = self.objective
        v = check_block(self, v)
        out = torch.zeros_like(v)
        v_model = v.to(obj.dtype)  # the products run in the model's dtype, sums in ours
        for weight, pullback in self._pullbacks_iter():
            out.add_(pullback(v_model).to(out.dtype), alpha=weight)
        (out,) = obj.reducer.sum(out)
        count = 1 if v.ndim == 1 else v.shape[1]
        self.num_products += count
        obj.require_finite(out, "Hessian-vector product", self.theta)
        if self.on_products is not None:
            self.on_products(count)
        return out

    def dense(self) -> Tensor:
        """The dense H(θ) (see :func:`dense_hessian`); counts no products here."""
        return dense_hessian(self.objective, self.theta, on_products=self.on_products)


def columns_per_block(n: int, itemsize: int, batch_graph_bytes: int, room: int, cap: int) -> int:
    """How many basis columns one batched block of Hessian products may carry.

    Each column carries its own tangent of a batch's gradient graph, and its input and output
    vectors: c columns need c·(batch_graph_bytes + 2·n·itemsize) of the ``room``. On a GPU the
    larger the block the better, up to what fits; on the CPU, where a block is a loop of single
    products, ``cap=32`` only bounds the basis held at once.

    Args:
        n: the dimension.
        itemsize: bytes per number.
        batch_graph_bytes: bytes of one batch's gradient graph (each column carries a tangent).
        room: the bytes the block may take.
        cap: the most columns in any case.
    """
    per_column = max(1, batch_graph_bytes + 2 * n * itemsize)
    return int(max(1, min(n, cap, room // per_column)))


def batches_that_fit(objective: Objective, theta: Tensor, budget: int) -> int:
    """How many batches, in order, can keep their gradient graphs within ``budget`` bytes.

    Args:
        objective: the objective (its batch weights scale the measured graph size).
        theta: where the first graph is built if none was yet.
        budget: the bytes the kept graphs may take.
    """
    weights = _positive(objective.data.weights)
    if len(weights) == 1:
        return 1  # a product needs that graph anyway: caching it costs no extra peak memory
    total = objective.graph_bytes(theta)
    if total is None:
        return len(weights)
    held, count = 0.0, 0
    for weight in weights:
        held += total * weight
        if held > budget:
            break
        count += 1
    return max(1, count)


def graph_size(build: Callable[[], tuple[Tensor, Tensor]], batch: Batch) -> int | None:
    """The bytes a gradient graph built by ``build`` keeps (the graph is then dropped).

    The bytes are those of the tensors autograd saves for the double backward, each storage
    once, the batch's data and θ excluded; None when an op refuses saved-tensor hooks. The
    graph is not kept for products: its unpack hook would run on every product through it.

    Args:
        build: builds (leaf, ∇ℓ_b) with the graph kept.
        batch: the batch it is built on (its tensors are not counted).
    """
    held = {t.untyped_storage().data_ptr() for t in batch.tensors()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in held:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            leaf, _ = build()
    except RuntimeError:  # an op that refuses saved-tensor hooks: no estimate
        return None
    seen.pop(leaf.untyped_storage().data_ptr(), None)
    return sum(seen.values())


def dense_hessian_fits(objective: Objective) -> bool:
    """Whether the dense Hessian fits the objective's memory budget.

    Args:
        objective: the objective (its size, dtype and memory budget).
    """
    return objective.dense_hessian_bytes() <= objective.memory_budget


def check_dense_fits(objective: Objective) -> None:
    """Raise :class:`HessianTooLargeError` if the dense Hessian exceeds the memory budget.

    Args:
        objective: the objective (its size, dtype and memory budget).
    """
    need = objective.dense_hessian_bytes()
    if need > objective.memory_budget:
        raise HessianTooLargeError(
            f"a dense Hessian of {objective.num_params:,} parameters in {objective.dtype} needs "
            f"{_human_bytes(need)} ({need:,} bytes), over this objective's memory budget of "
            f"{_human_bytes(objective.memory_budget)}; use hessian_spectrum(obj, θ, k=...) for "
            "the extreme eigenvalues by Lanczos (Hessian-vector products only), or pass a larger "
            "memory_budget= to Objective if the memory is there"
        )


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError  # unreachable


def dense_hessian(
    objective: Objective, theta: Tensor, *, on_products: Callable[[int], None] | None = None
) -> Tensor:
    """The dense Hessian H(θ) (n×n, symmetric): HVPs on the unit basis, block by block.

    Args:
        objective: the objective whose Hessian to assemble (it must fit its memory budget).
        theta: the parameters.
        on_products: called with the number of products after each block (progress).
    """
    objective.check_dense_fits()
    # the graphs share the budget with H itself
    room = objective.memory_budget - objective.dense_hessian_bytes()
    op = HessianOperator(
        objective, objective.check_theta(theta), budget=room, on_products=on_products
    )
    n = objective.num_params
    chunk = hessian_block_columns(objective, op.theta)
    try:
        H = torch.empty(n, n, dtype=op.dtype, device=objective.device)
    except RuntimeError as err:  # the budget is larger than the memory there is
        raise HessianTooLargeError(
            f"a dense {n:,}×{n:,} Hessian ({_human_bytes(objective.dense_hessian_bytes())}) is "
            f"within memory_budget but cannot be allocated on {objective.device} ({err}); "
            "lower memory_budget to what the machine has, or use Lanczos (k=...)"
        ) from None
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        H[:, start:stop] = op @ unit_block(n, start, stop, op.dtype, objective.device)
    return symmetrize(H, chunk)


def hessian_block_columns(objective: Objective, theta: Tensor) -> int:
    """Columns per block of the dense Hessian (see :func:`columns_per_block`).

    On an accelerator the block size follows the memory free there and this rank's graphs, so
    the ranks of a distributed objective take the smallest: each block is one all-reduce, and
    every rank must make the same ones.

    Args:
        objective: the objective (its size, dtype, device, budget and graph size).
        theta: where the graph size is measured if it was not yet.
    """
    n = objective.num_params
    itemsize = torch.empty((), dtype=working_dtype(objective.dtype)).element_size()
    if objective.device.type == "cpu":
        return columns_per_block(n, itemsize, 0, _CHUNK_BYTES, cap=32)
    graph = objective.graph_bytes(theta) or 0
    room = objective.memory_budget - objective.dense_hessian_bytes() - graph
    if objective.device.type == "cuda":
        room = min(room, torch.cuda.mem_get_info(objective.device)[0] // 2)
    per_batch = max(int(graph * w) for w in objective.data.weights)
    return min(objective.reducer.gather(columns_per_block(n, itemsize, per_batch, room, cap=n)))


def _agrees(a: Tensor, b: Tensor) -> bool:
    """Equal up to the rounding of a product: ‖a − b‖ ≤ 1000·ε·max(‖a‖, ‖b‖)."""
    eps = torch.finfo(a.dtype).eps
    scale = max(float(torch.linalg.vector_norm(a)), float(torch.linalg.vector_norm(b)), 1e-300)
    return float(torch.linalg.vector_norm(a - b)) <= 1e3 * eps * scale


def _positive(weights: tuple[float, ...]) -> list[float]:
    """The weights of the batches a pass yields (empty batches are skipped)."""
    return [w for w in weights if w > 0]
