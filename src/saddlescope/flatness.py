"""Gradient flatness: how much of ∇L lies where the Hessian is flat, at classify's zero band.

A search for ∇L = 0 can stall at a point where g ≠ 0 but H·g ≈ 0: g lies in H's (near-)null
space, so no Newton-type step removes it — a **gradient-flat** point (Frye et al., 2020), not a
critical point. One definition, at the same zero band as :func:`~saddlescope.classify.classify`:

    share = ‖P₀ g‖/‖g‖,   P₀ = Σ_{|λᵢ| ≤ τ} uᵢuᵢᵀ,   τ = max(atol, rtol·max|λ|)

(λᵢ, uᵢ the eigenpairs of H), and θ is gradient-flat when share ≥ ``flat_tol``. It is measured
only where θ is not critical (‖g‖ > grad_tol): a critical point has no direction to speak of.

Two paths. Where the dense Hessian fits (``method="dense"``), the share is exact from ``eigh``.
Otherwise (``"lanczos"``), Lanczos from g (full reorthogonalisation) gives the Gauss quadrature
of g's spectral measure — nodes θⱼ (Ritz values), weights s₁ⱼ² — and the Chebyshev–Markov–
Stieltjes inequalities bound the measure of the band [−τ, τ] between two sums of weights; the
steps go on until the bounds on the share are 0.01 apart (exact once the Krylov space is
invariant). When they still straddle ``flat_tol`` after the allowed steps the status is
"unknown" — never "flat" from an unfinished computation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from torch import Tensor

from saddlescope.checks import check_choice, check_int, check_positive
from saddlescope.errors import InvalidInputError
from saddlescope.hessian import dense_hessian_fits
from saddlescope.lanczos import lanczos, lanczos_tridiag
from saddlescope.objective import Objective
from saddlescope.operators import symmetric_eigh
from saddlescope.tolerance import FLAT_TOL, Tolerance

__all__ = ["FLATNESS_METHODS", "Flatness", "check_flat_tol", "gradient_flatness"]

FlatnessStatus = Literal["critical", "flat", "not-flat", "unknown"]
FLATNESS_METHODS = ("auto", "dense", "lanczos")
_DENSE_MAX = 1024  # "auto": the exact dense path up to this many parameters (when it fits)
_BAND_RESOLUTION = 0.01  # Lanczos stops once the share's bounds are this close


@dataclass(frozen=True)
class Flatness:
    """The gradient flatness at θ and its evidence.

    Attributes:
        status: "critical" (‖g‖ ≤ grad_tol: not measured), "flat" (share ≥ flat_tol),
            "not-flat" (share < flat_tol) or "unknown" (the bounds straddle flat_tol).
        share: ‖P₀g‖/‖g‖, the part of g in the zero band (None when critical).
        share_bounds: (low, high) around ``share`` (equal on the dense path).
        hg_ratio: ‖H·g‖/‖g‖ (None when critical).
        grad_norm: ‖g‖.
        threshold: τ, the zero band's half-width |λ| ≤ τ.
        flat_tol: the share from which θ is gradient-flat.
        grad_tol: ‖g‖ at or below which θ is critical.
        method: "dense" or "lanczos" (None when critical).
        hvps: Hessian-vector products spent.
    """

    status: FlatnessStatus
    share: float | None
    share_bounds: tuple[float, float] | None
    hg_ratio: float | None
    grad_norm: float
    threshold: float | None
    flat_tol: float
    grad_tol: float
    method: str | None
    hvps: int

    @property
    def flat(self) -> bool:
        """True when θ is certified gradient-flat."""
        return self.status == "flat"

    def to_dict(self) -> dict[str, Any]:
        """Every field by name (bounds as a list)."""
        d = dict(self.__dict__)
        d["share_bounds"] = None if self.share_bounds is None else list(self.share_bounds)
        return d

    def __str__(self) -> str:
        if self.share is None:
            return f"critical (‖g‖ {self.grad_norm:.3g} ≤ {self.grad_tol:g}): flatness not measured"
        lo, hi = self.share_bounds or (self.share, self.share)
        bounds = "" if lo == hi else f" [{lo:.3g}, {hi:.3g}]"
        return (
            f"{self.status}: share of g in the zero band |λ| ≤ {self.threshold:.3g} is "
            f"{self.share:.3g}{bounds} (flat from {self.flat_tol:g}), ‖Hg‖/‖g‖ "
            f"{self.hg_ratio:.3g}, ‖g‖ {self.grad_norm:.3g}; {self.method}, {self.hvps} HVPs"
        )


def gradient_flatness(
    obj: Objective,
    theta: Tensor,
    *,
    grad_tol: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    flat_tol: float = FLAT_TOL,
    method: str = "auto",
    max_steps: int | None = None,
    grad: Tensor | None = None,
) -> Flatness:
    """The share of ∇L(θ) in H(θ)'s zero band, and whether θ is gradient-flat (module docstring).

    Args:
        obj: the objective.
        theta: the parameters.
        grad_tol: θ is critical (not measured) when ‖g‖ ≤ grad_tol (default by dtype).
        rtol: the zero band relative to max|λ| (default by dtype, as in ``classify``).
        atol: the zero band's absolute floor (default 0).
        flat_tol: the share from which θ is gradient-flat, in (0, 1].
        method: "auto" (dense up to 1024 parameters when it fits, else Lanczos), "dense" or
            "lanczos".
        max_steps: the Lanczos path's most steps (default min(n, 300)).
        grad: ∇L(θ) when already known, to skip recomputing it.
    """
    theta = obj.check_theta(theta)
    check_choice("method", method, FLATNESS_METHODS)
    check_flat_tol(flat_tol)
    tol = Tolerance.resolve(obj.dtype, grad_tol=grad_tol, rtol=rtol, atol=atol)
    steps = min(obj.num_params, 300) if max_steps is None else check_int("max_steps", max_steps, 1)
    g = obj.grad(theta) if grad is None else obj.check_theta(grad, "grad")
    gn = float(torch.linalg.vector_norm(g))
    base = {"grad_norm": gn, "flat_tol": flat_tol, "grad_tol": tol.grad_tol}
    if gn <= tol.grad_tol:
        return Flatness("critical", None, None, None, threshold=None, method=None, hvps=0, **base)
    if method == "auto":
        method = "dense" if obj.num_params <= _DENSE_MAX and dense_hessian_fits(obj) else "lanczos"
    if method == "dense":
        share, bounds, hg, tau, hvps = _dense(obj, theta, g, tol)
    else:
        share, bounds, hg, tau, hvps = _lanczos(obj, theta, g, tol, steps)
    status: FlatnessStatus = (
        "flat" if bounds[0] >= flat_tol else "not-flat" if bounds[1] < flat_tol else "unknown"
    )
    return Flatness(status, share, bounds, hg, threshold=tau, method=method, hvps=hvps, **base)


def check_flat_tol(flat_tol: float) -> float:
    """``flat_tol`` if it is a share in (0, 1], else :class:`InvalidInputError`.

    Args:
        flat_tol: the share of g in the zero band from which θ is gradient-flat.
    """
    if not 0 < check_positive("flat_tol", flat_tol) <= 1:
        raise InvalidInputError(f"flat_tol must be in (0, 1] (a share of ‖g‖), got {flat_tol}")
    return flat_tol


_Measure = tuple[float, tuple[float, float], float, float, int]


def _dense(obj: Objective, theta: Tensor, g: Tensor, tol: Tolerance) -> _Measure:
    """Exact share from eigh(H): (share, bounds, ‖Hg‖/‖g‖, τ, products)."""
    lam, U = symmetric_eigh(obj.hessian(theta))
    assert U is not None
    tau = tol.threshold(float(lam.abs().max()))
    gn = float(torch.linalg.vector_norm(g))
    c = U.mT @ g
    share = float(torch.linalg.vector_norm(c[lam.abs() <= tau])) / gn
    hg = float(torch.linalg.vector_norm(lam * c)) / gn
    return share, (share, share), hg, tau, obj.num_params


def _lanczos(obj: Objective, theta: Tensor, g: Tensor, tol: Tolerance, steps: int) -> _Measure:
    """Share and bounds from Lanczos started at g, τ from the extreme eigenvalues."""
    op = obj.hessian_operator(theta)
    extremes = lanczos(op, 1, which="both")
    tau = tol.threshold(extremes.scale)

    def settled(alpha: np.ndarray, beta: np.ndarray) -> bool:
        lo, hi = _band_weights(alpha, beta, tau)
        return math.sqrt(hi) - math.sqrt(lo) <= _BAND_RESOLUTION

    (tri,) = lanczos_tridiag(op, g, steps, on_step=settled)
    beta = np.append(tri.beta.numpy(), tri.beta_last)
    lo, hi = _band_weights(tri.alpha.numpy(), beta, tau)
    alpha1, beta1 = float(tri.alpha[0]), float(beta[0])
    hg = math.hypot(alpha1, beta1)  # ‖H q₁‖ for q₁ = g/‖g‖, from the first step
    share = math.sqrt((lo + hi) / 2)
    return share, (math.sqrt(lo), math.sqrt(hi)), hg, tau, extremes.products + tri.steps


def _band_weights(alpha: np.ndarray, beta: np.ndarray, tau: float) -> tuple[float, float]:
    """Bounds (low, high) on μ([−τ, τ]), μ the spectral measure of q₁, from its Gauss rule.

    ``beta`` holds the m − 1 couplings of T and then β_m. The Ritz values θⱼ and weights
    wⱼ = s₁ⱼ² are the m-point Gauss rule of μ; by the Chebyshev–Markov–Stieltjes inequalities
    the distribution F(t) = μ((−∞, t]) lies between the weights below the last node under t and
    those up to the first node above it. An invariant Krylov space (β_m = 0) makes them exact.
    """
    m = alpha.size
    theta, S = eigh_tridiagonal(alpha, beta[: m - 1]) if m > 1 else (alpha, np.ones((1, 1)))
    w = S[0] ** 2
    if abs(beta[m - 1]) <= 1e-12 * max(float(np.abs(theta).max()), 1e-300):
        exact = float(w[np.abs(theta) <= tau].sum())
        return exact, exact
    cum = np.concatenate([[0.0], np.cumsum(w)])

    def cdf(count: int) -> tuple[float, float]:  # bounds on F(t), ``count`` nodes at or below t
        return float(cum[max(count - 1, 0)]), float(cum[min(count + 1, m)])

    top_lo, top_hi = cdf(int((theta <= tau).sum()))
    bottom_lo, bottom_hi = cdf(int((theta < -tau).sum()))
    return max(top_lo - bottom_hi, 0.0), min(top_hi - bottom_lo, 1.0)
