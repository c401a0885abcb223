"""Curvature operators: H(θ) and friends as things you multiply flat vectors by.

Every algorithm in saddlescope (Lanczos, spectra, SLQ, traces, inertia) takes an
:class:`Operator`: anything with ``op @ v`` for a vector of length n (and ``op @ V`` for an n×k
block), a ``shape`` (n, n), a ``dtype``, a ``device`` and a ``num_products`` count. Three are
built in:

* :class:`HessianOperator` — H(θ) of an :class:`~saddlescope.objective.Objective` at a fixed θ,
  by Hessian-vector products: reverse-over-reverse through each batch's gradient graph, built
  once and kept for as many batches as the memory budget holds (the others are rebuilt per
  product);
* :class:`MatrixOperator` — a symmetric matrix held as a tensor (tests, references, restricted
  problems);
* :class:`CallableOperator` — any function v ↦ H·v on vectors.

:func:`dense_hessian` assembles the n×n Hessian from products on the unit basis, block by
block within the memory budget; :class:`HessianLinearOperator` adapts any operator to SciPy.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import Tensor

from saddlescope.errors import InvalidInputError, NonFiniteError
from saddlescope.kernels import missing_derivative

if TYPE_CHECKING:
    from saddlescope.objective import Batch, Objective

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "CallableOperator",
    "HessianLinearOperator",
    "HessianOperator",
    "MatrixOperator",
    "Operator",
    "as_operator",
    "dense_hessian",
    "dense_matrix",
]

DEFAULT_MEMORY_BUDGET = 2 * 1024**3  # bytes a dense Hessian may take (2 GiB: 16k params in float64)
Pullback = Callable[[Tensor], Tensor]
_LOOP_GRAPH_BYTES = 256 * 1024  # CPU: from this graph size on, a block is a loop of products
_CHUNK_BYTES = 64 * 1024**2  # bytes of basis vectors held at once by the dense Hessian on the CPU


@runtime_checkable
class Operator(Protocol):
    """What the algorithms need of a symmetric n×n operator."""

    shape: tuple[int, int]
    dtype: torch.dtype
    device: torch.device
    num_products: int

    def __matmul__(self, v: Tensor) -> Tensor:
        """H·v for a vector (n,) or H·V for a block (n, k)."""
        ...


class HessianOperator:
    """H(θ) at one fixed θ as a torch operator: ``op @ v`` (n,) or ``op @ V`` (n, k).

    Counts its products in :attr:`num_products` (a block of k vectors counts k).
    :attr:`cached_batches` says how many batches keep their gradient graph (see
    :meth:`Objective.hessian_operator`); the others rebuild theirs for every product.

    Args:
        objective: the objective whose Hessian this is.
        theta: the parameters (copied: later edits of the caller's θ do not leak in).
        cache: True keeps every batch's gradient graph, False none, None (default) as many
            as fit ``budget`` in order (one batch always).
        budget: bytes the kept graphs may take (default: the objective's memory budget).
    """

    def __init__(
        self,
        objective: Objective,
        theta: Tensor,
        *,
        cache: bool | None = None,
        budget: int | None = None,
    ) -> None:
        self.objective = objective
        self.theta = theta.detach().clone()  # our own: later edits of the caller's θ don't leak in
        self.shape = (objective.num_params, objective.num_params)
        self.dtype = objective.dtype
        self.device = objective.device
        self.memory_budget = objective.memory_budget
        self.num_products = 0
        self._cache, self._budget = cache, budget
        self._built: list[tuple[float, Pullback]] | None = None

    def _graphs(self) -> list[tuple[float, Pullback]]:
        """(weight, pullback) of the batches that keep their graphs, built at the first product."""
        if self._built is None:
            objective, cache = self.objective, self._cache
            batches = iter(objective.data)
            # the first batch's graph is built first: it is always kept unless cache=False, and
            # building it measures the graph size that decides how many of the others fit
            kept = [] if cache is False else [self._weighted(next(batches))]
            if cache is None:
                room = objective.memory_budget if self._budget is None else self._budget
                count = batches_that_fit(objective, self.theta, room)
            else:
                count = len(_positive(objective.data.weights)) if cache else 0
            kept += [self._weighted(b) for b in itertools.islice(batches, count - len(kept))]
            self._built = kept
        return self._built

    def _weighted(self, batch: Batch) -> tuple[float, Pullback]:
        return batch.weight, self._pullback(batch)

    @property
    def cached_batches(self) -> int:
        """How many batches keep their gradient graph between products."""
        return len(self._graphs())

    def _pullback(self, batch: Batch) -> Callable[[Tensor], Tensor]:
        """V ↦ H_b·V for one batch, through its gradient graph built once (n or n×k blocks).

        Plain ``torch.autograd`` on a flat leaf, which skips the wrapping ``torch.func.vjp``
        pays per product. A block of k vectors is one batched backward (``is_grads_batched``),
        except on the CPU for batches whose graph holds ≥ 256 KiB, where k single products
        measured faster per column while small graphs are all call overhead (see
        docs/benchmarks.md). The rule depends on shapes only, so results never depend on
        timings.
        """
        obj = self.objective
        leaf, g = obj.gradient_graph(self.theta, batch)
        if not g.requires_grad:  # the loss is at most linear in θ: H_b = 0
            return torch.zeros_like
        loop_blocks = (
            obj.device.type == "cpu"
            and (obj.graph_bytes(self.theta) or 0) * batch.weight >= _LOOP_GRAPH_BYTES
        )

        def product(v: Tensor) -> Tensor:
            try:
                return torch.autograd.grad(
                    g, leaf, v, retain_graph=True, allow_unused=True, materialize_grads=True
                )[0]
            except RuntimeError as err:
                raise missing_derivative(err) or err from err

        def pullback(V: Tensor) -> Tensor:
            if V.ndim == 1:
                return product(V)
            if loop_blocks:
                return torch.stack([product(V[:, j]) for j in range(V.shape[1])], dim=1)
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

        return pullback

    def _pullbacks_iter(self) -> Iterator[tuple[float, Pullback]]:
        kept = self._graphs()
        yield from kept
        if len(kept) < len(_positive(self.objective.data.weights)):
            for b in itertools.islice(self.objective.data, len(kept), None):
                yield b.weight, self._pullback(b)

    def __matmul__(self, v: Tensor) -> Tensor:
        obj = self.objective
        v = _check_block(self, v)
        out = torch.zeros_like(v)
        for weight, pullback in self._pullbacks_iter():
            out.add_(pullback(v), alpha=weight)
        self.num_products += 1 if v.ndim == 1 else v.shape[1]
        obj.require_finite(out, "Hessian-vector product", self.theta)
        return out

    def dense(self) -> Tensor:
        """The dense H(θ) (see :func:`dense_hessian`); counts no products here."""
        return dense_hessian(self.objective, self.theta)


def columns_per_block(n: int, itemsize: int, batch_graph_bytes: int, room: int, cap: int) -> int:
    """How many basis columns one batched block of Hessian products may carry.

    Each column carries its own tangent of a batch's gradient graph, and its input and output
    vectors: c columns need c·(batch_graph_bytes + 2·n·itemsize) of the ``room``. On a GPU the
    larger the block the better, up to what fits; on the CPU, where a block is a loop of single
    products, ``cap=32`` only bounds the basis held at once.
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


class HessianLinearOperator(LinearOperator):
    """A symmetric operator as a ``scipy.sparse.linalg.LinearOperator``, counting products.

    NumPy arrays go in and out in float64 or float32 (the operator's precision); the work runs
    in torch on the operator's device. :attr:`num_products` counts matrix-vector products.

    Args:
        op: any :class:`Operator` (a :class:`HessianOperator`, :class:`MatrixOperator`…).
    """

    def __init__(self, op: Operator) -> None:
        self.op = op
        np_dtype = np.float64 if op.dtype == torch.float64 else np.float32
        super().__init__(dtype=np.dtype(np_dtype), shape=op.shape)

    @property
    def num_products(self) -> int:
        """Products computed so far (shared with the wrapped operator)."""
        return self.op.num_products

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        return self._apply(np.asarray(x).reshape(-1)).reshape(np.shape(x))

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self._matvec(x)

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        return self._apply(np.asarray(X))

    def _apply(self, x: np.ndarray) -> np.ndarray:
        out = self.op @ torch.from_numpy(np.ascontiguousarray(x))
        return out.detach().cpu().numpy().astype(self.dtype, copy=False)

    def _adjoint(self) -> HessianLinearOperator:
        return self


class MatrixOperator:
    """A symmetric matrix as an :class:`Operator` that counts its products.

    Args:
        matrix: a symmetric n×n tensor (floating point); it is used as given, not copied.

    >>> op = MatrixOperator(torch.diag(torch.tensor([1.0, 2.0], dtype=torch.float64)))
    >>> (op @ torch.ones(2, dtype=torch.float64)).tolist(), op.num_products
    ([1.0, 2.0], 1)
    """

    def __init__(self, matrix: Tensor) -> None:
        if not isinstance(matrix, Tensor) or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            shape = tuple(matrix.shape) if isinstance(matrix, Tensor) else type(matrix).__name__
            raise InvalidInputError(f"need a square matrix (a 2-D tensor), got {shape}")
        if not matrix.is_floating_point():
            raise InvalidInputError(f"the matrix must be floating point, got {matrix.dtype}")
        self.matrix = matrix
        n = matrix.shape[0]
        self.shape = (n, n)
        self.dtype = matrix.dtype
        self.device = matrix.device
        self.memory_budget = DEFAULT_MEMORY_BUDGET
        self.num_products = 0

    def __matmul__(self, v: Tensor) -> Tensor:
        v = _check_block(self, v)
        self.num_products += 1 if v.ndim == 1 else v.shape[1]
        return _finite(self.matrix @ v)

    def dense(self) -> Tensor:
        """The matrix itself (no products)."""
        return self.matrix


class CallableOperator:
    """A function v ↦ H·v on vectors of length n as an :class:`Operator` (blocks: column by column).

    Args:
        matvec: the product, taking and returning a vector of length n.
        n: the dimension.
        dtype: the vectors' dtype (default float64).
        device: the vectors' device (default CPU).
    """

    def __init__(
        self,
        matvec: Callable[[Tensor], Tensor],
        n: int,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if not callable(matvec):
            raise InvalidInputError(f"matvec must be callable v ↦ H·v, got {type(matvec).__name__}")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidInputError(f"n must be a positive integer (the dimension), got {n!r}")
        dt = torch.float64 if dtype is None else dtype
        if not isinstance(dt, torch.dtype) or not dt.is_floating_point:
            raise InvalidInputError(f"dtype must be a floating-point torch.dtype, got {dt!r}")
        self.matvec = matvec
        self.shape = (n, n)
        self.dtype = dt
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.memory_budget = DEFAULT_MEMORY_BUDGET
        self.num_products = 0

    def __matmul__(self, v: Tensor) -> Tensor:
        v = _check_block(self, v)
        if v.ndim == 1:
            return _finite(self._one(v))
        return _finite(torch.stack([self._one(v[:, j]) for j in range(v.shape[1])], dim=1))

    def _one(self, v: Tensor) -> Tensor:
        n = self.shape[0]
        out = torch.as_tensor(self.matvec(v))
        if out.shape != (n,):
            raise InvalidInputError(
                f"matvec must map a vector of length {n} to one of length {n}, got shape "
                f"{tuple(out.shape)}; check n"
            )
        self.num_products += 1
        return out.to(device=self.device, dtype=self.dtype)


def as_operator(source: object, theta: Tensor | None = None) -> Operator:
    """The operator an algorithm works on: H(θ) of an Objective, or an operator/matrix as given.

    Args:
        source: an :class:`~saddlescope.objective.Objective` (then ``theta`` is required), an
            :class:`Operator`, or a square tensor (wrapped in :class:`MatrixOperator`).
        theta: the parameters at which to take an Objective's Hessian; must be None otherwise.
    """
    from saddlescope.objective import Objective

    if isinstance(source, Objective):
        if theta is None or isinstance(theta, int):
            raise InvalidInputError(
                "with an Objective pass the parameter vector θ (a tensor of length "
                f"{source.num_params}) as the second argument"
            )
        return source.hessian_operator(theta)
    if theta is not None:
        raise InvalidInputError(
            "θ is only for an Objective; an operator or a matrix is already at its point "
            "(for a function v ↦ H·v use CallableOperator(matvec, n))"
        )
    if isinstance(source, Tensor):
        return MatrixOperator(source)
    if isinstance(source, Operator):
        return source
    hint = " (wrap it: CallableOperator(matvec, n))" if callable(source) else ""
    raise InvalidInputError(
        "pass an Objective and θ, an operator (with @, shape, dtype, device, num_products) or a "
        f"square tensor; got {type(source).__name__}{hint}"
    )


def dense_matrix(op: Operator) -> Tensor:
    """The n×n matrix of an operator: its own ``dense()`` when it has one, else H·I by blocks.

    Args:
        op: any :class:`Operator`; without a ``dense()`` it is applied to the unit basis
            32 columns at a time (n products) and the result symmetrised, ½(H + Hᵀ).
    """
    dense = getattr(op, "dense", None)
    if callable(dense):
        return dense()
    n = op.shape[0]
    H = torch.empty(n, n, dtype=op.dtype, device=op.device)
    for start in range(0, n, 32):
        stop = min(start + 32, n)
        H[:, start:stop] = op @ _unit_block(n, start, stop, op.dtype, op.device)
    return _symmetrize(H, 32)


def dense_hessian(objective: Objective, theta: Tensor) -> Tensor:
    """The dense Hessian H(θ) (n×n, symmetric): HVPs on the unit basis, block by block.

    Args:
        objective: the objective whose Hessian to assemble (it must fit its memory budget).
        theta: the parameters.
    """
    objective.check_dense_fits()
    # the graphs share the budget with H itself
    room = objective.memory_budget - objective.dense_hessian_bytes()
    op = HessianOperator(objective, objective.check_theta(theta), budget=room)
    n = objective.num_params
    chunk = hessian_block_columns(objective, op.theta)
    H = torch.empty(n, n, dtype=objective.dtype, device=objective.device)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        H[:, start:stop] = op @ _unit_block(n, start, stop, objective.dtype, objective.device)
    return _symmetrize(H, chunk)


def hessian_block_columns(objective: Objective, theta: Tensor) -> int:
    """Columns per block of the dense Hessian (see :func:`columns_per_block`)."""
    n = objective.num_params
    itemsize = torch.empty((), dtype=objective.dtype).element_size()
    if objective.device.type == "cpu":
        return columns_per_block(n, itemsize, 0, _CHUNK_BYTES, cap=32)
    graph = objective.graph_bytes(theta) or 0
    room = objective.memory_budget - objective.dense_hessian_bytes() - graph
    if objective.device.type == "cuda":
        room = min(room, torch.cuda.mem_get_info(objective.device)[0] // 2)
    per_batch = max(int(graph * w) for w in objective.data.weights)
    return columns_per_block(n, itemsize, per_batch, room, cap=n)


def _unit_block(n: int, start: int, stop: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    basis = torch.zeros(n, stop - start, dtype=dtype, device=device)
    basis[torch.arange(start, stop), torch.arange(stop - start)] = 1
    return basis


def _symmetrize(H: Tensor, chunk: int) -> Tensor:
    """(H + Hᵀ)/2 in place, block by block (products are symmetric only up to rounding)."""
    n = H.shape[0]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = 0.5 * (H[start:stop, start:] + H[start:, start:stop].mT)
        H[start:stop, start:] = block
        H[start:, start:stop] = block.mT
    return H


def _positive(weights: tuple[float, ...]) -> list[float]:
    """The weights of the batches a pass yields (empty batches are skipped)."""
    return [w for w in weights if w > 0]


def _check_block(op: Operator, v: Tensor) -> Tensor:
    n = op.shape[0]
    v = torch.as_tensor(v).to(device=op.device, dtype=op.dtype)
    if v.ndim not in (1, 2) or v.shape[0] != n:
        raise InvalidInputError(
            f"H is {n}×{n}; cannot multiply a tensor of shape {tuple(v.shape)} (pass a vector "
            f"of length {n} or an n×k block)"
        )
    return v


def _finite(out: Tensor) -> Tensor:
    if not torch.isfinite(out).all():
        raise NonFiniteError(
            "the operator's product holds NaN or Inf; check θ and the model (float64?)"
        )
    return out
