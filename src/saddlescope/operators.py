"""Curvature operators: H(θ) and friends as things you multiply flat vectors by.

Every algorithm in saddlescope (Lanczos, spectra, SLQ, traces, inertia) takes an
:class:`Operator`: anything with ``op @ v`` for a vector of length n (and ``op @ V`` for an n×k
block), a ``shape`` (n, n), a ``dtype``, a ``device`` and a ``num_products`` count. Three are
built in:

* :class:`~saddlescope.hessian.HessianOperator` — H(θ) of an
  :class:`~saddlescope.objective.Objective` at a fixed θ (module :mod:`saddlescope.hessian`);
* :class:`MatrixOperator` — a symmetric matrix held as a tensor (tests, references, restricted
  problems);
* :class:`CallableOperator` — any function v ↦ H·v on vectors.

:func:`dense_matrix` assembles any operator's matrix; :class:`HessianLinearOperator` adapts
any operator to SciPy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator
from torch import Tensor

from saddlescope.errors import InvalidInputError, NonFiniteError

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "HALF_DTYPES",
    "CallableOperator",
    "HessianLinearOperator",
    "MatrixOperator",
    "Operator",
    "as_operator",
    "check_block",
    "dense_matrix",
    "symmetric_eigh",
    "symmetrize",
    "unit_block",
    "working_dtype",
]

DEFAULT_MEMORY_BUDGET = 2 * 1024**3  # bytes a dense Hessian may take (2 GiB: 16k params in float64)
HALF_DTYPES = (torch.float16, torch.bfloat16)


def working_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype of an operator's vectors: float32 for a half-precision model, else its own.

    A model in bfloat16 or float16 computes its products in that dtype, but Krylov vectors,
    recurrences, sums over batches and eigendecompositions in half precision would add their
    own rounding (a Lanczos λ_min 5 % off on a 163-parameter MLP), so they run in float32.

    Args:
        dtype: the model's (the objective's) dtype.
    """
    return torch.float32 if dtype in HALF_DTYPES else dtype


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
        self.matrix = check_symmetric_matrix(matrix)
        n = matrix.shape[0]
        self.shape = (n, n)
        self.dtype = matrix.dtype
        self.device = matrix.device
        self.memory_budget = DEFAULT_MEMORY_BUDGET
        self.num_products = 0

    def __matmul__(self, v: Tensor) -> Tensor:
        v = check_block(self, v)
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
        v = check_block(self, v)
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
        H[:, start:stop] = op @ unit_block(n, start, stop, op.dtype, op.device)
    return symmetrize(H, 32)


def unit_block(n: int, start: int, stop: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Columns ``start:stop`` of the n×n identity.

    Args:
        n: the dimension.
        start: the first column.
        stop: one past the last column.
        dtype: their dtype.
        device: their device.
    """
    basis = torch.zeros(n, stop - start, dtype=dtype, device=device)
    basis[torch.arange(start, stop), torch.arange(stop - start)] = 1
    return basis


def symmetrize(H: Tensor, chunk: int) -> Tensor:
    """(H + Hᵀ)/2 in place, block by block (products are symmetric only up to rounding).

    Args:
        H: the square matrix, overwritten.
        chunk: rows per block.
    """
    n = H.shape[0]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        block = 0.5 * (H[start:stop, start:] + H[start:, start:stop].mT)
        H[start:stop, start:] = block
        H[start:, start:stop] = block.mT
    return H


def symmetric_eigh(H: Tensor, *, eigenvectors: bool = True) -> tuple[Tensor, Tensor | None]:
    """(λ ascending, U or None) of a symmetric matrix, robust to LAPACK's rare failures.

    ``torch.linalg.eigh`` (divide and conquer) can fail to converge on ill-conditioned
    matrices with clustered eigenvalues; those are decomposed again by SciPy's MRRR driver
    (``evr``), on the CPU, and returned on H's device and dtype.

    Args:
        H: a symmetric n×n tensor.
        eigenvectors: also return the eigenvectors (else None).
    """
    if H.dtype in HALF_DTYPES:  # LAPACK has no half precision: float32 (the working dtype)
        H = H.float()
    try:
        if eigenvectors:
            lam, U = torch.linalg.eigh(H)
            return lam, U
        return torch.linalg.eigvalsh(H), None
    except torch.linalg.LinAlgError:
        import scipy.linalg

        a = H.detach().cpu().numpy().astype(np.float64)
        out = scipy.linalg.eigh(a, eigvals_only=not eigenvectors, driver="evr")
        lam_np, U_np = (out, None) if not eigenvectors else out

        def back(a: np.ndarray) -> Tensor:
            return torch.from_numpy(np.ascontiguousarray(a)).to(device=H.device, dtype=H.dtype)

        return back(lam_np), None if U_np is None else back(U_np)


def check_symmetric_matrix(matrix: Any) -> Tensor:
    """``matrix`` if it is a finite, symmetric, floating-point n×n tensor; else a clear error.

    Symmetric means ``|H − Hᵀ| ≤ √ε · max|H|`` entrywise (ε of its dtype): rounding in how H
    was assembled is allowed, a wrong matrix is not.

    Args:
        matrix: the candidate Hessian.
    """
    if not isinstance(matrix, Tensor) or matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        shape = tuple(matrix.shape) if isinstance(matrix, Tensor) else type(matrix).__name__
        raise InvalidInputError(f"need a square matrix (a 2-D tensor), got {shape}")
    if not matrix.is_floating_point():
        raise InvalidInputError(f"the matrix must be floating point, got {matrix.dtype}")
    if not bool(torch.isfinite(matrix).all()):
        raise NonFiniteError("the matrix holds NaN or Inf; pass a finite Hessian")
    gap = float((matrix - matrix.mT).abs().max()) if matrix.numel() else 0.0
    scale = float(matrix.abs().max()) if matrix.numel() else 0.0
    if gap > torch.finfo(matrix.dtype).eps ** 0.5 * scale:
        raise InvalidInputError(
            f"the matrix is not symmetric (max |H − Hᵀ| = {gap:.3g}); a Hessian is symmetric — "
            "pass (H + H.T) / 2 if the asymmetry is rounding"
        )
    return matrix


def check_block(op: Operator, v: Tensor) -> Tensor:
    """``v`` in the operator's dtype and device, or a clear error for a wrong shape.

    Args:
        op: the operator.
        v: a vector (n,) or a block (n, k).
    """
    n = op.shape[0]
    try:
        v = torch.as_tensor(v).to(device=op.device, dtype=op.dtype)
    except (TypeError, ValueError, RuntimeError):
        raise InvalidInputError(
            f"H is {n}×{n}; the vector v to multiply must be a tensor of numbers, got "
            f"{type(v).__name__}"
        ) from None
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
