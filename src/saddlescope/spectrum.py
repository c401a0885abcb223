"""Eigenvalues of the Hessian (or any symmetric operator), and their signs at a tolerance.

Three methods, one result type (:class:`Spectrum`), picked from a table by ``method=``:

* **dense** — ``torch.linalg.eigh`` (or ``eigvalsh`` when no vectors are wanted) of the full
  matrix, when it fits the memory budget: every eigenvalue, hence the exact :class:`Inertia`
  (n₋, n₀, n₊), the index n₋/n and the minimum ratio n₊/n.
* **lanczos** — the k extreme eigenpairs by :func:`~saddlescope.lanczos.lanczos` (full
  reorthogonalisation, stopped when each eigenvalue reaches a relative accuracy; runs on the
  operator's device): products only, for models whose Hessian does not fit. Each pair comes
  with its residual ‖Hv − λv‖ and its eigenvalue error estimate. A partial spectrum has no
  inertia (``spectrum.inertia is None``): k extremes cannot count the rest.
* **arpack** — the same by SciPy's ``eigsh`` (implicitly restarted Lanczos), the reference,
  with measured residuals.

"Zero" always means |λ| ≤ threshold = max(atol, rtol·max|λ|) (see :mod:`saddlescope.tolerance`);
rtol and atol travel with the result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from torch import Tensor

from saddlescope.checks import check_choice, check_int, check_positive
from saddlescope.errors import HessianTooLargeError, SaddlescopeError
from saddlescope.hessian import HessianOperator
from saddlescope.lanczos import extreme_indices, lanczos
from saddlescope.operators import (
    DEFAULT_MEMORY_BUDGET,
    HessianLinearOperator,
    Operator,
    as_operator,
    check_symmetric_matrix,
    dense_matrix,
    symmetric_eigh,
)
from saddlescope.tolerance import LANCZOS_TOL, Inertia, Tolerance

__all__ = ["DEFAULT_K", "Spectrum", "dense_fits", "hessian_spectrum", "spectrum_from_matrix"]

Which = Literal["both", "smallest", "largest"]
Method = Literal["auto", "dense", "lanczos", "arpack"]
DEFAULT_K = 6


@dataclass(frozen=True, eq=False)
class Spectrum:
    """Hessian eigenvalues (ascending) with the tolerance that decides their signs.

    For a partial spectrum (``which`` = "smallest", "largest" or "both") only those extremes
    are held (``complete`` is False) and there is no inertia (None): the signs of the eigenvalues
    not held are unknown.

    Attributes:
        eigenvalues: λ, ascending, CPU float64 (all n, or the extremes asked for).
        eigenvectors: n × len(eigenvalues), ``eigenvectors[:, i]`` belonging to
            ``eigenvalues[i]``; None when not kept.
        num_params: n, the Hessian's size.
        method: how it was computed: "dense", "lanczos" or "arpack".
        hvps: Hessian-vector products spent (n for a dense Hessian assembled from products).
        rtol: the zero band relative to max|λ|: |λ| ≤ max(atol, rtol·max|λ|) counts as zero.
        atol: the zero band's absolute floor.
        residuals: ‖H·uᵢ − λᵢ·uᵢ‖ per eigenvalue (iterative methods), else None.
        errors: the estimated |λ̂ᵢ − λᵢ| per eigenvalue (iterative methods), else None.
        which: "all" for a complete spectrum, else the end(s) held.
        scale: max|λ| of the *whole* spectrum for a partial one (measured separately when the
            held end cannot show it, so the tolerance means the same at either end); None:
            taken from the eigenvalues held.
        converged: False when an iterative method stopped before its tolerance.
    """

    eigenvalues: Tensor
    eigenvectors: Tensor | None
    num_params: int
    method: str
    hvps: int
    rtol: float
    atol: float
    residuals: Tensor | None = None
    errors: Tensor | None = None
    which: str = "all"
    scale: float | None = None
    converged: bool = True

    @property
    def complete(self) -> bool:
        """True when every eigenvalue of the n×n Hessian is held."""
        return self.eigenvalues.numel() == self.num_params

    @property
    def threshold(self) -> float:
        """The zero band's half-width max(atol, rtol·max|λ|): |λ| ≤ threshold counts as zero."""
        scale = self.scale
        if scale is None:
            scale = float(self.eigenvalues.abs().max()) if self.eigenvalues.numel() else 0.0
        return max(self.atol, self.rtol * scale)

    @property
    def inertia(self) -> Inertia | None:
        """Exact (n₋, n₀, n₊) when every eigenvalue is held; None for a partial spectrum."""
        if not self.complete:
            return None
        return Inertia.of_values(self.eigenvalues, self.threshold)

    @property
    def min(self) -> float:
        """The smallest eigenvalue held."""
        return float(self.eigenvalues[0])

    @property
    def max(self) -> float:
        """The largest eigenvalue held."""
        return float(self.eigenvalues[-1])

    def to_dict(self) -> dict[str, Any]:
        """Everything but the eigenvectors, as plain Python values."""
        return {
            "method": self.method,
            "which": self.which,
            "scale": self.scale,
            "converged": self.converged,
            "num_params": self.num_params,
            "complete": self.complete,
            "eigenvalues": self.eigenvalues.tolist(),
            "residuals": None if self.residuals is None else self.residuals.tolist(),
            "errors": None if self.errors is None else self.errors.tolist(),
            "hvps": self.hvps,
            "rtol": self.rtol,
            "atol": self.atol,
            "threshold": self.threshold,
            "inertia": None if self.inertia is None else self.inertia.to_dict(),
        }

    def __str__(self) -> str:
        held = "all" if self.complete else f"{self.eigenvalues.numel()} extreme"
        accuracy = ""
        if self.residuals is not None and self.residuals.numel():
            accuracy = f"; max ‖Hv − λv‖ {float(self.residuals.max()):.2g}"
        if not self.converged:
            accuracy += "; NOT converged to its tolerance"
        counts = "" if self.inertia is None else f" {self.inertia}"
        return (
            f"Spectrum({self.method}, {held} of n={self.num_params}): λ ∈ [{self.min:.6g}, "
            f"{self.max:.6g}];{counts} zero band |λ| ≤ {self.threshold:.3g} "
            f"(rtol={self.rtol:g}, atol={self.atol:g}); {self.hvps} HVPs{accuracy}"
        )


def spectrum_from_matrix(
    H: Tensor,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    eigenvectors: bool = True,
    hvps: int = 0,
) -> Spectrum:
    """The full spectrum of a symmetric matrix H (any source) as a :class:`Spectrum`.

    Args:
        H: a symmetric n×n tensor.
        rtol: the zero band relative to max|λ| (default by H's dtype).
        atol: the zero band's absolute floor (default 0).
        eigenvectors: also compute the eigenvectors (``eigh``; else ``eigvalsh``).
        hvps: the products it took to build H, recorded in the result.
    """
    H = check_symmetric_matrix(H)
    tol = Tolerance.resolve(H.dtype, rtol=rtol, atol=atol)
    values, vectors = symmetric_eigh(H, eigenvectors=eigenvectors)
    return Spectrum(
        eigenvalues=values.detach().to("cpu", torch.float64),
        eigenvectors=None if vectors is None else vectors.detach(),
        num_params=H.shape[0],
        method="dense",
        hvps=hvps,
        rtol=tol.rtol,
        atol=tol.atol,
    )


@dataclass(frozen=True)
class _Request:
    """What a spectrum method is asked for (validated)."""

    op: Operator
    k: int | None  # per end; None: every eigenvalue
    which: Which
    eigenvectors: bool
    tolerance: Tolerance
    lanczos_tol: float
    lanczos_bound: Literal["residual", "gap"]
    lanczos_steps: int | None
    max_restarts: int | None
    seed: int

    @property
    def per_end(self) -> int:
        return DEFAULT_K if self.k is None else self.k


def hessian_spectrum(
    source: Any,
    theta: Tensor | None = None,
    *,
    k: int | None = None,
    which: Which = "both",
    method: Method = "auto",
    eigenvectors: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
    lanczos_tol: float = LANCZOS_TOL,
    lanczos_bound: Literal["residual", "gap"] = "residual",
    lanczos_steps: int | None = None,
    max_restarts: int | None = None,
    seed: int = 0,
) -> Spectrum:
    """Eigenvalues (and eigenvectors) of H(θ): all of them densely, or k extremes by Lanczos.

    ``hessian_spectrum(obj, θ)`` for an :class:`~saddlescope.objective.Objective`;
    ``hessian_spectrum(op)`` for any :class:`~saddlescope.operators.Operator` or square tensor.
    An unlucky Lanczos start vector can leave the extreme eigenvalue unseen, the residual then
    vouching for the next one (see :mod:`saddlescope.lanczos`): another ``seed`` checks.

    Args:
        source: an Objective (with ``theta``), an operator, or a symmetric matrix.
        theta: the parameters, for an Objective only.
        k: eigenpairs per end by Lanczos; None (default) asks for every eigenvalue.
        which: the end(s) for a partial spectrum: "largest" (algebraically), "smallest"
            (most negative) or "both" (k from each end).
        method: "auto" (dense when ``k`` is None and H fits the memory budget, else Lanczos
            with k = 6), "dense", "lanczos" or "arpack" (SciPy's ``eigsh``, the reference).
        eigenvectors: keep the eigenvectors (needed for escape directions and probes).
        rtol: the zero band relative to max|λ| (default by dtype).
        atol: the zero band's absolute floor (default 0).
        lanczos_tol: Lanczos stops after the first step at which every wanted pair has
            r = ‖Hv − λv‖ ≤ lanczos_tol·|λ| (≤ lanczos_tol·rtol·max|λ| inside the zero band);
            ARPACK's relative tolerance for "arpack".
        lanczos_bound: "residual" (the test above: an eigenvalue within r of each λ returned)
            or "gap" (the error estimate min(r, r²/gap) meets it: fewer products, trusting the
            gap to the nearest other Ritz value).
        lanczos_steps: the largest Lanczos basis (default min(n, max(20·k, 100))).
        max_restarts: ARPACK's restarts ("arpack" only; default SciPy's).
        seed: seeds the start vector.

    >>> from saddlescope import hessian_spectrum, toy
    >>> obj = toy.worked_example_objective()
    >>> hessian_spectrum(obj, torch.zeros(2)).eigenvalues.tolist()
    [-2.0, 2.0]
    """
    check_choice("method", method, ("auto", "dense", "lanczos", "arpack"))
    check_choice("which", which, ("both", "smallest", "largest"))
    check_choice("lanczos_bound", lanczos_bound, ("residual", "gap"))
    check_positive("lanczos_tol", lanczos_tol, allow_zero=True)
    op = as_operator(source, theta)
    request = _Request(
        op=op,
        k=None if k is None else check_int("k", k, 1),
        which=which,
        eigenvectors=bool(eigenvectors),
        tolerance=Tolerance.resolve(op.dtype, rtol=rtol, atol=atol),
        lanczos_tol=lanczos_tol,
        lanczos_bound=lanczos_bound,
        lanczos_steps=None
        if lanczos_steps is None
        else check_int("lanczos_steps", lanczos_steps, 1),
        max_restarts=None if max_restarts is None else check_int("max_restarts", max_restarts, 1),
        seed=check_int("seed", seed, 0),
    )
    return _METHODS[_resolve_method(request, method)](request)


def _resolve_method(request: _Request, method: str) -> str:
    """The method to run: "auto" → dense or lanczos; too large a partial request → dense."""
    op, n = request.op, request.op.shape[0]
    if method == "auto":
        method = "dense" if request.k is None and dense_fits(op) else "lanczos"
    ends = 2 if request.which == "both" else 1
    if method in ("lanczos", "arpack") and request.per_end * ends >= n - 1:
        _check_dense_fits(op)  # ARPACK needs k < n − 1; so small a problem is dense anyway
        return "dense"
    return method


def dense_fits(op: Operator) -> bool:
    """Whether the operator's dense matrix fits its memory budget.

    Args:
        op: a :class:`~saddlescope.hessian.HessianOperator` (its objective's budget) or any
            operator (its ``memory_budget`` attribute, else the default budget).
    """
    try:
        _check_dense_fits(op)
    except HessianTooLargeError:
        return False
    return True


def _check_dense_fits(op: Operator) -> None:
    if isinstance(op, HessianOperator):
        op.objective.check_dense_fits()
        return
    n = op.shape[0]
    need = n * n * torch.empty((), dtype=op.dtype).element_size()
    budget = getattr(op, "memory_budget", DEFAULT_MEMORY_BUDGET)
    if need > budget:
        raise HessianTooLargeError(
            f"a dense {n}×{n} matrix in {op.dtype} needs {need:,} bytes, over the memory budget "
            f"of {budget:,}; use k=... for the extreme eigenvalues by Lanczos"
        )


def _dense(request: _Request) -> Spectrum:
    op = request.op
    _check_dense_fits(op)
    n = op.shape[0]
    full = spectrum_from_matrix(
        dense_matrix(op),
        rtol=request.tolerance.rtol,
        atol=request.tolerance.atol,
        eigenvectors=request.eigenvectors,
        hvps=n,
    )
    return full if request.k is None else _select(full, request.k, request.which)


def _lanczos(request: _Request) -> Spectrum:
    op = request.op
    before = op.num_products
    res = lanczos(
        op,
        request.per_end,
        which=request.which,
        lanczos_tol=max(request.lanczos_tol, 10 * torch.finfo(op.dtype).eps),
        floor=request.tolerance.rtol,
        bound=request.lanczos_bound,
        lanczos_steps=request.lanczos_steps,
        seed=request.seed,
    )
    return Spectrum(
        eigenvalues=res.eigenvalues.to("cpu", torch.float64),
        eigenvectors=res.eigenvectors if request.eigenvectors else None,
        num_params=op.shape[0],
        method="lanczos",
        hvps=op.num_products - before,
        rtol=request.tolerance.rtol,
        atol=request.tolerance.atol,
        residuals=res.residuals,
        errors=res.errors,
        which=request.which,
        scale=res.scale,
        converged=res.converged,
    )


def _select(full: Spectrum, k: int, which: Which) -> Spectrum:
    ix = torch.from_numpy(extreme_indices(full.eigenvalues.numel(), k, which))
    return Spectrum(
        eigenvalues=full.eigenvalues[ix],
        eigenvectors=None
        if full.eigenvectors is None
        else full.eigenvectors[:, ix.to(full.eigenvectors.device)],
        num_params=full.num_params,
        method="dense",
        hvps=full.hvps,
        rtol=full.rtol,
        atol=full.atol,
        residuals=None,
        which=which,
        scale=float(full.eigenvalues.abs().max()),
    )


def _arpack(request: _Request) -> Spectrum:
    op = HessianLinearOperator(request.op)
    before = op.num_products
    n, k = op.shape[0], request.per_end
    v0 = np.random.default_rng(request.seed).standard_normal(n).astype(op.dtype)
    maxiter = request.max_restarts
    ends = {"both": ("BE", 2 * k), "smallest": ("SA", k), "largest": ("LA", k)}
    mode, count = ends[request.which]
    w, V = _eigsh(op, count, mode, request.lanczos_tol, v0, maxiter)
    scale = float(np.abs(w).max())
    if request.which != "both":  # the held end may not be the larger in magnitude: measure max|λ|
        scale = max(scale, float(np.abs(_eigsh(op, 1, "LM", 1e-4, v0, maxiter)[0]).max()))
    order = np.argsort(w)
    w, V = w[order], V[:, order]
    V_t = torch.from_numpy(np.ascontiguousarray(V)).to(
        device=request.op.device, dtype=request.op.dtype
    )
    w_t = torch.from_numpy(w).to(device=request.op.device, dtype=request.op.dtype)
    residuals = torch.linalg.vector_norm(request.op @ V_t - V_t * w_t, dim=0)
    return Spectrum(
        eigenvalues=torch.from_numpy(w.astype(np.float64)),
        eigenvectors=V_t if request.eigenvectors else None,
        num_params=n,
        method="arpack",
        hvps=op.num_products - before,
        rtol=request.tolerance.rtol,
        atol=request.tolerance.atol,
        residuals=residuals.to("cpu", torch.float64),
        which=request.which,
        scale=scale,
    )


def _eigsh(
    op: HessianLinearOperator, k: int, which: str, tol: float, v0: np.ndarray, maxiter: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """SciPy ``eigsh`` with ARPACK's non-convergence turned into a clear error."""
    try:
        return eigsh(op, k=k, which=which, tol=tol, v0=v0, maxiter=maxiter)
    except ArpackNoConvergence as err:
        raise SaddlescopeError(
            f"Lanczos (ARPACK) did not converge for {k} eigenpairs ({which}) within "
            f"{maxiter or 'its default'} restarts: {err}; raise max_restarts or lanczos_tol"
        ) from None


_METHODS: dict[str, Callable[[_Request], Spectrum]] = {
    "dense": _dense,
    "lanczos": _lanczos,
    "arpack": _arpack,
}
