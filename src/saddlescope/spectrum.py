"""Eigenvalues of the Hessian, and their signs at a stated tolerance.

Two paths, one result type (:class:`Spectrum`):

* **dense** — ``torch.linalg.eigh`` (or ``eigvalsh`` when no vectors are wanted) of the full
  Hessian, when it fits the objective's memory budget: every eigenvalue, hence exact counts
  n₊, n₋, n₀, the index n₋/n and the minimum ratio n₊/n.
* **lanczos** — the k extreme eigenpairs by saddlescope's torch Lanczos (full
  reorthogonalisation, stopped when each eigenvalue reaches a relative accuracy; runs on the
  objective's device): Hessian-vector products only, for models whose Hessian does not fit.
  Each pair comes with its residual ‖Hv − λv‖ and its eigenvalue error estimate;
* **arpack** — the same by SciPy's ``eigsh`` (implicitly restarted Lanczos) on the Hessian as a
  ``LinearOperator``, the reference, with measured residuals.

"Zero" always means |λ| ≤ tol with tol = max(atol, rtol·max|λ|); the tolerance travels with the
result. Default rtol by dtype: float64 1e-6, float32 1e-3, half precision 1e-2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, eigsh
from torch import Tensor

from saddlescope.checks import check_choice, check_positive
from saddlescope.errors import HessianTooLargeError, InvalidInputError, SaddlescopeError
from saddlescope.lanczos import extreme_indices, lanczos_eigs
from saddlescope.objective import Objective
from saddlescope.operators import HessianLinearOperator
from saddlescope.tolerance import Inertia, Tolerance

__all__ = ["Spectrum", "hessian_spectrum", "spectrum_from_matrix"]

Which = Literal["both", "smallest", "largest"]
Method = Literal["auto", "dense", "lanczos", "arpack"]
DEFAULT_K = 6


@dataclass(frozen=True, eq=False)
class Spectrum:
    """Hessian eigenvalues (ascending) with the tolerance that decides their signs.

    ``eigenvectors[:, i]`` (when kept) belongs to ``eigenvalues[i]``. For a partial spectrum
    (``which`` = "smallest", "largest" or "both") only those extremes are held (``complete`` is
    False) and the counts are over them; ``scale`` is then max|λ| of the *whole* spectrum (measured
    separately when the held end cannot show it), so the tolerance means the same at either end.
    """

    eigenvalues: Tensor
    eigenvectors: Tensor | None
    num_params: int
    method: str
    hvps: int
    rtol: float
    atol: float
    residuals: Tensor | None = None
    errors: Tensor | None = None  # estimated |λ̂ − λ| per eigenvalue (iterative methods)
    which: str = "all"
    scale: float | None = None
    converged: bool = True  # False when an iterative method stopped before its tolerance

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
        return float(self.eigenvalues[0])

    @property
    def max(self) -> float:
        return float(self.eigenvalues[-1])

    def to_dict(self) -> dict[str, Any]:
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
    atol: float = 0.0,
    eigenvectors: bool = True,
    hvps: int = 0,
) -> Spectrum:
    """The full spectrum of a symmetric matrix H (any source) as a :class:`Spectrum`."""
    tol = Tolerance.resolve(H.dtype, rtol=rtol, atol=atol)
    rtol, atol = tol.rtol, tol.atol
    if eigenvectors:
        values, vectors = torch.linalg.eigh(H)
    else:
        values, vectors = torch.linalg.eigvalsh(H), None
    return Spectrum(
        eigenvalues=values.detach().to("cpu", torch.float64),
        eigenvectors=None if vectors is None else vectors.detach(),
        num_params=H.shape[0],
        method="dense",
        hvps=hvps,
        rtol=rtol,
        atol=atol,
    )


def hessian_spectrum(
    obj: Objective,
    theta: Tensor,
    *,
    k: int | None = None,
    which: Which = "both",
    method: Method = "auto",
    eigenvectors: bool = True,
    rtol: float | None = None,
    atol: float = 0.0,
    lanczos_tol: float = 1e-8,
    lanczos_bound: Literal["residual", "gap"] = "residual",
    max_steps: int | None = None,
    max_restarts: int | None = None,
    seed: int = 0,
) -> Spectrum:
    """Eigenvalues (and eigenvectors) of H(θ): all of them densely, or k extremes by Lanczos.

    ``method="auto"`` takes the dense path when ``k`` is None and the dense Hessian fits the
    objective's memory budget, and Lanczos otherwise (with k = 6 when not given). ``which``
    picks the end for Lanczos: ``"largest"`` (algebraically), ``"smallest"`` (most negative) or
    ``"both"`` (k from each end).

    * ``"lanczos"``: saddlescope's torch Lanczos (:func:`~saddlescope.lanczos.lanczos_eigs`, on
      the objective's device), stopped after the first step at which every wanted pair has
      r = ‖Hv − λv‖ ≤ lanczos_tol·|λ| (≤ lanczos_tol·rtol·max|λ| inside the zero band), so
      an eigenvalue lies within r of each λ returned (``residuals``); with
      ``lanczos_bound="gap"`` it stops when the eigenvalue error estimate min(r, r²/gap)
      (``errors``, always reported) meets the same test — fewer products, trusting
      the gap to the nearest other Ritz value. ``max_steps`` caps the basis. An unlucky
      start vector can leave the extreme eigenvalue unseen, the residual then vouching for the
      next one (see :mod:`saddlescope.lanczos`): another ``seed`` checks.
    * ``"arpack"``: SciPy's ``eigsh`` (ARPACK) on the ``LinearOperator``, the reference;
      ``lanczos_tol`` is then ARPACK's relative tolerance and ``max_restarts`` its restarts.

    >>> from saddlescope import hessian_spectrum, toy
    >>> obj = toy.worked_example_objective()
    >>> hessian_spectrum(obj, torch.zeros(2)).eigenvalues.tolist()
    [-2.0, 2.0]
    """
    check_choice("method", method, ("auto", "dense", "lanczos", "arpack"))
    check_choice("which", which, ("both", "smallest", "largest"))
    check_choice("lanczos_bound", lanczos_bound, ("residual", "gap"))
    tol = Tolerance.resolve(obj.dtype, rtol=rtol, atol=atol)
    rtol, atol = tol.rtol, tol.atol
    theta = obj.check_theta(theta)
    n = obj.num_params
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise InvalidInputError(f"k must be a positive integer (eigenpairs per end), got {k!r}")

    if method == "auto":
        try:
            obj.check_dense_fits()
            fits = True
        except HessianTooLargeError:
            fits = False
        method = "dense" if (k is None and fits) else "lanczos"
    per_end = k if k is not None else DEFAULT_K
    ends = 2 if which == "both" else 1
    if method in ("lanczos", "arpack") and per_end * ends >= n - 1:
        obj.check_dense_fits()  # ARPACK needs k < n - 1; so small a problem is dense anyway
        method = "dense_select"

    if method in ("dense", "dense_select"):
        full = spectrum_from_matrix(
            obj.hessian(theta), rtol=rtol, atol=atol, eigenvectors=eigenvectors, hvps=n
        )
        if k is None:
            return full
        return _select(full, per_end, which)
    if method == "lanczos":
        return _torch_lanczos(
            obj,
            theta,
            per_end,
            which,
            eigenvectors,
            rtol,
            atol,
            tol=lanczos_tol,
            bound=lanczos_bound,
            max_steps=max_steps,
            seed=seed,
        )
    return _arpack(
        obj, theta, per_end, which, eigenvectors, rtol, atol, lanczos_tol, max_restarts, seed
    )


def _torch_lanczos(
    obj: Objective,
    theta: Tensor,
    k: int,
    which: Which,
    want_vectors: bool,
    rtol: float,
    atol: float,
    *,
    tol: float,
    bound: Literal["residual", "gap"],
    max_steps: int | None,
    seed: int,
) -> Spectrum:
    op = obj.hessian_operator(theta)
    res = lanczos_eigs(
        lambda v: op @ v,
        obj.num_params,
        k,
        which=which,
        tol=max(tol, 10 * torch.finfo(obj.dtype).eps),
        floor=rtol,
        bound=bound,
        max_steps=max_steps,
        seed=seed,
        dtype=obj.dtype,
        device=obj.device,
    )
    return Spectrum(
        eigenvalues=res.eigenvalues.to("cpu", torch.float64),
        eigenvectors=res.eigenvectors if want_vectors else None,
        num_params=obj.num_params,
        method="lanczos",
        hvps=op.num_products,
        rtol=rtol,
        atol=atol,
        residuals=res.residuals,
        errors=res.errors,
        which=which,
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


def _arpack(
    obj: Objective,
    theta: Tensor,
    k: int,
    which: Which,
    want_vectors: bool,
    rtol: float,
    atol: float,
    lanczos_tol: float,
    max_restarts: int | None,
    seed: int,
) -> Spectrum:
    check_positive("lanczos_tol", lanczos_tol, allow_zero=True)
    op = obj.linear_operator(theta)
    n = obj.num_params
    v0 = np.random.default_rng(seed).standard_normal(n).astype(op.dtype)
    maxiter = None if max_restarts is None else max(1, int(max_restarts))
    ends = {"both": ("BE", 2 * k), "smallest": ("SA", k), "largest": ("LA", k)}
    mode, count = ends[which]
    w, V = _eigsh(op, count, mode, lanczos_tol, v0, maxiter)
    scale = float(np.abs(w).max())
    if which != "both":  # the held end may not be the larger in magnitude: measure max|λ|
        scale = max(scale, float(np.abs(_eigsh(op, 1, "LM", 1e-4, v0, maxiter)[0]).max()))
    order = np.argsort(w)
    w, V = w[order], V[:, order]
    V_t = torch.from_numpy(np.ascontiguousarray(V)).to(device=obj.device, dtype=obj.dtype)
    w_t = torch.from_numpy(w).to(device=obj.device, dtype=obj.dtype)
    residuals = torch.linalg.vector_norm(op.op @ V_t - V_t * w_t, dim=0)
    return Spectrum(
        eigenvalues=torch.from_numpy(w.astype(np.float64)),
        eigenvectors=V_t if want_vectors else None,
        num_params=n,
        method="arpack",
        hvps=op.num_products,
        rtol=rtol,
        atol=atol,
        residuals=residuals.to("cpu", torch.float64),
        which=which,
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
