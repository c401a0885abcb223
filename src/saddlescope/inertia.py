"""n₋, n₀, n₊ of the Hessian with error bars, from products only (SLQ + Gauss–Radau).

**Inertia** (:func:`estimate_inertia`). n₋, n₀, n₊ at tol = max(atol, rtol·max|λ|) are n times
the distribution function F(x) = #{λ ≤ x}/n at ±tol. The Gauss rule's own count is biased where
nodes are sparse, so each probe is *bracketed* instead: the Gauss–Radau rule with a node fixed at
t (T_m bordered by β_m) matches the 2m+1 moments the probe measured, and by the Markov–Krein
theorem every measure with those moments satisfies

    Σ_{x_j < t} w_j  ≤  μ_z((−∞, t))  ≤  μ_z((−∞, t])  ≤  Σ_{x_j ≤ t} w_j       (x, w: Radau rule),

the sharpest bounds those moments allow; their gap is the Christoffel function at t, the mass
the probe cannot place on either side of t. The bracket *is* the allowance for quadrature bias —
a bound, not a guess. The sampling error comes on top: the probes' mean of zᵀPz (P the spectral
projector of the counted set, rank f·n) lies between the mean lower and upper ends exactly, and
for Rademacher probes its variance is at most 2f(1−f)/(n·p) whatever the eigenvectors, which
gives a Wilson-type score interval at the stated confidence (``variance="bound"``, the default,
valid for any number of probes); ``variance="sample"`` uses Student t on the probe-to-probe
spread of the two ends instead.

Why not a Chebyshev / kernel-polynomial (KPM, Jackson-damped) count: a degree-d KPM has one
fixed resolution, ~(λmax−λmin)/d inside the spectrum, and the Jackson kernel's bias on a step
function has no computable bound; Lanczos adapts its nodes to the spectrum (outliers cost one
node each, so deflating extreme eigenvectors buys little) and Gauss–Radau bounds its bias. What
no HVP-only method can do is separate eigenvalues from ±tol closer than its polynomial degree
resolves (for polynomials, about (λmax−λmin)/m² near an edge of the spectrum, (λmax−λmin)/m
inside; converged Ritz values do better): eigenvalue mass there lands inside the bar, honestly
widening it. Neural-network Hessians put much of their spectrum within 10⁻⁴·max|λ| of zero, so
short runs give wide bars at the default rtol = 10⁻⁶; long runs resolve it — a few hundred
steps on ``python -m benchmarks.inertia``'s 4.7k-parameter MLP (docs/benchmarks.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from scipy.stats import norm as normal
from scipy.stats import t as student_t
from torch import Tensor

from saddlescope.checks import check_choice, check_fraction, check_positive
from saddlescope.errors import InvalidInputError
from saddlescope.operators import as_operator
from saddlescope.slq import SpectralDensity, slq
from saddlescope.tolerance import Inertia, Tolerance

__all__ = ["InertiaEstimate", "estimate_inertia", "inertia_from_density"]

Variance = Literal["bound", "sample"]
DEFAULT_INERTIA_STEPS = 400
DEFAULT_INERTIA_PROBES = 1


class _Count(NamedTuple):
    """One count's estimate: value in [low, high]; its quadrature and sampling allowances."""

    value: float
    low: float
    high: float
    quadrature: float
    statistical: float


@dataclass(frozen=True, eq=False)
class InertiaEstimate:
    """n₋, n₀, n₊ of H(θ) at |λ| ≤ threshold, estimated with confidence intervals.

    ``inertia`` holds the counts and their bars (an :class:`~saddlescope.tolerance.Inertia`);
    ``quadrature`` and ``statistical`` split each bar (n₋, n₀, n₊) into the Gauss–Radau
    bracket's mean half-gap (the allowance for quadrature bias) and the mean of the two
    sampling margins, both before clipping to [0, n]. ``threshold`` = max(atol, rtol·scale) with
    ``scale`` the largest |Ritz value| (a lower bound on max|λ|); the bars also allow for max|λ|
    up to ``scale`` + the extreme Ritz residual, i.e. for thresholds in ``threshold_range``.
    ``confidence`` is the bars' level, ``variance`` how the sampling part was bounded, and
    ``probes`` × ``lanczos_steps`` (``hvps`` products) the work done on ``num_params``
    parameters; ``rtol``, ``atol`` the zero band asked for; ``method`` "slq-radau".
    """

    inertia: Inertia
    quadrature: tuple[float, float, float]
    statistical: tuple[float, float, float]
    num_params: int
    threshold: float
    threshold_range: tuple[float, float]
    rtol: float
    atol: float
    scale: float
    confidence: float
    probes: int
    lanczos_steps: int
    hvps: int
    variance: str = "bound"
    method: str = "slq-radau"

    @property
    def index(self) -> float:
        """n₋/n (estimated)."""
        return self.inertia.index

    @property
    def minimum_ratio(self) -> float:
        """n₊/n (estimated)."""
        return self.inertia.minimum_ratio

    def covers(self, n_neg: float, n_zero: float, n_pos: float) -> bool:
        """True when all three counts lie inside their bars.

        Args:
            n_neg: a count of negative eigenvalues to check.
            n_zero: a count of zero eigenvalues.
            n_pos: a count of positive eigenvalues.
        """
        return self.inertia.covers(n_neg, n_zero, n_pos)

    def to_dict(self) -> dict[str, Any]:
        """The inertia with its bars, their split, and how it was estimated."""
        return {
            "method": self.method,
            "num_params": self.num_params,
            "inertia": self.inertia.to_dict(),
            "quadrature": list(self.quadrature),
            "statistical": list(self.statistical),
            "threshold": self.threshold,
            "threshold_range": list(self.threshold_range),
            "rtol": self.rtol,
            "atol": self.atol,
            "scale": self.scale,
            "confidence": self.confidence,
            "probes": self.probes,
            "lanczos_steps": self.lanczos_steps,
            "hvps": self.hvps,
            "variance": self.variance,
        }

    def __str__(self) -> str:
        est = self.inertia
        pct = f"{100 * self.confidence:g} %"
        return (
            f"InertiaEstimate(SLQ + Gauss–Radau brackets, {self.probes} probes × "
            f"{self.lanczos_steps} steps, n={self.num_params}): {est}; index {est.index:.4f} ± "
            f"{est.index_err:.4f}, minimum ratio {est.minimum_ratio:.4f} ± "
            f"{est.minimum_ratio_err:.4f} ({pct} confidence) at |λ| ≤ {self.threshold:.3g} "
            f"(rtol={self.rtol:g}, atol={self.atol:g}); {self.hvps} HVPs"
        )


def _score_root(x: float, c: float, upper: bool) -> float:
    """The root f of (f − x)² = c·f(1 − f) above x (``upper``) or below it: a Wilson score end."""
    x = min(1.0, max(0.0, x))
    b = 2 * x + c
    disc = math.sqrt(max(0.0, b * b - 4 * (1 + c) * x * x))
    return (b + disc) / (2 * (1 + c)) if upper else (b - disc) / (2 * (1 + c))


def _count(lower: Tensor, upper: Tensor, confidence: float, n: int, variance: str) -> _Count:
    """A confidence interval for a fraction f from per-probe brackets, times n.

    ``"bound"``: the interval is every f with mean(lower) − q·σ(f) ≤ f ≤ mean(upper) + q·σ(f),
    σ²(f) = 2f(1−f)/(n·p), q normal (a Wilson score interval: tight near 0 and 1).
    ``"sample"``: [mean(lower) − q·se(lower), mean(upper) + q·se(upper)], the probes' standard
    errors, q Student-t on p − 1 degrees of freedom.
    """
    p = lower.numel()
    mean_lo, mean_hi = float(lower.mean()), float(upper.mean())
    if variance == "bound":
        z = float(normal.ppf(0.5 + confidence / 2))
        c = 2 * z * z / (n * p)
        low, high = _score_root(mean_lo, c, upper=False), _score_root(mean_hi, c, upper=True)
    else:
        q = float(student_t.ppf(0.5 + confidence / 2, p - 1))
        low = mean_lo - q * float(lower.std() / math.sqrt(p))
        high = mean_hi + q * float(upper.std() / math.sqrt(p))
    quadrature = max(0.0, mean_hi - mean_lo) / 2
    statistical = max(0.0, (high - mean_hi) + (mean_lo - low)) / 2
    low, high = min(1.0, max(0.0, low)), max(0.0, min(1.0, high))
    low = min(low, high)
    value = min(high, max(low, (mean_lo + mean_hi) / 2))
    return _Count(n * value, n * low, n * high, n * quadrature, n * statistical)


def inertia_from_density(
    sd: SpectralDensity,
    *,
    rtol: float,
    atol: float = 0.0,
    confidence: float = 0.95,
    variance: Variance = "bound",
) -> InertiaEstimate:
    """Bars on n₋ = n·F(−tol−0), n₊ = n·(1 − F(tol)), n₀ = the rest, from per-probe brackets.

    Per probe, lower ≤ zᵀPz ≤ upper for the spectral projector P of each set (Gauss–Radau), so
    the probes' mean of zᵀPz lies in [mean(lower), mean(upper)] exactly; each side of the
    interval adds the sampling error at probability (1−confidence)/2 (``variance``: see the
    module docstring). No products: reuse one :func:`~saddlescope.slq.slq` run for several
    tolerances.

    Args:
        sd: the spectral density from :func:`~saddlescope.slq.slq`.
        rtol: the zero band relative to max|λ|.
        atol: the zero band's absolute floor.
        confidence: the bars' confidence level, in (0, 1).
        variance: "bound" (the largest variance a Rademacher probe's count can have) or
            "sample" (Student t on the probes' spread; ≥ 2 probes).
    """
    check_positive("rtol", rtol, allow_zero=True)
    check_positive("atol", atol, allow_zero=True)
    check_choice("variance", variance, ("bound", "sample"))
    confidence = check_fraction("confidence", confidence, "0.95")
    if variance == "sample" and sd.probes < 2:
        raise InvalidInputError(
            "variance='sample' needs at least 2 probes (3 or more for a useful Student-t "
            "quantile); pass more probes or variance='bound'"
        )
    n = sd.num_params
    scale_lo, scale_hi = sd.scale, sd.scale_bound
    tol_lo, tol_hi = max(atol, rtol * scale_lo), max(atol, rtol * scale_hi)
    lo_neg, _ = sd.cdf_bracket(-tol_hi)  # ≤ F(−tol−0) for every tol in the range
    _, hi_neg = sd.cdf_bracket(-tol_lo)
    lo_cdf, _ = sd.cdf_bracket(tol_lo)
    _, hi_cdf = sd.cdf_bracket(tol_hi)  # ≥ F(tol)
    counts = (
        _count(lo_neg, hi_neg, confidence, n, variance),
        _count(lo_cdf - hi_neg, hi_cdf - lo_neg, confidence, n, variance),
        _count(1 - hi_cdf, 1 - lo_cdf, confidence, n, variance),
    )
    neg, zero, pos = ((c.low, c.high) for c in counts)
    return InertiaEstimate(
        inertia=Inertia(
            counts[0].value,
            counts[1].value,
            counts[2].value,
            bars=(neg, zero, pos),
            confidence=confidence,
        ),
        quadrature=(counts[0].quadrature, counts[1].quadrature, counts[2].quadrature),
        statistical=(counts[0].statistical, counts[1].statistical, counts[2].statistical),
        num_params=n,
        threshold=tol_lo,
        threshold_range=(tol_lo, tol_hi),
        rtol=rtol,
        atol=atol,
        scale=scale_lo,
        confidence=confidence,
        probes=sd.probes,
        lanczos_steps=sd.lanczos_steps,
        hvps=sd.hvps,
        variance=variance,
    )


def estimate_inertia(
    source: Any,
    theta: Tensor | None = None,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    probes: int = DEFAULT_INERTIA_PROBES,
    lanczos_steps: int | None = None,
    seed: int = 0,
    confidence: float = 0.95,
    variance: Variance = "bound",
) -> InertiaEstimate:
    """n₋, n₀, n₊ (hence index and minimum ratio) with error bars, from probes × steps HVPs.

    Runs :func:`~saddlescope.slq.slq` and brackets each probe's distribution function at ±tol by
    Gauss–Radau (module docstring): the bars hold the quadrature bias by construction and the
    sampling error at ``confidence``. tol = max(atol, rtol·max|λ|) as everywhere in saddlescope
    (rtol defaults by dtype: 1e-6 in float64), max|λ| from the probes' extreme Ritz values. Where
    much of the spectrum lies within about (λmax−λmin)/steps² of ±tol the bars are wide: they say
    what HVPs can tell, no more. ``variance``: ``"bound"`` (default) the largest variance a
    Rademacher probe's count can have, valid for any number of probes; ``"sample"`` Student t on the
    probe-to-probe spread (≥ 2 probes).

    Defaults: one probe of ``lanczos_steps`` = min(n, 400). The sampling part,
    ≈ q·√(2f(1−f)/(n·p)), is known in advance and small for large n (±0.02·n at n = 5000,
    f = ½, one probe), whereas the quadrature part dominates for Hessians with much mass near
    zero and falls fast with the Lanczos degree — one long run beats several short ones at
    equal cost (``python -m benchmarks.inertia``; docs/benchmarks.md). Memory: the Lanczos
    basis, (lanczos_steps + 1)·n numbers.

    Args:
        source: an Objective (with ``theta``), an operator, or a symmetric matrix.
        theta: the parameters, for an Objective only.
        rtol: the zero band relative to max|λ| (default by dtype).
        atol: the zero band's absolute floor (default 0).
        probes: Rademacher probes (default 1).
        lanczos_steps: Lanczos steps per probe (default min(n, 400)).
        seed: seeds the probes.
        confidence: the bars' confidence level, in (0, 1).
        variance: "bound" or "sample" (see :func:`inertia_from_density`).

    >>> import torch
    >>> lam = torch.cat([torch.full((50,), -1.0), torch.zeros(100), torch.full((50,), 2.0)])
    >>> H = torch.diag(lam.to(torch.float64))
    >>> est = estimate_inertia(H)   # Lanczos stops after 3 steps: the exact rule
    >>> est.covers(50, 100, 50), round(est.minimum_ratio, 6), est.hvps
    (True, 0.25, 3)
    """
    op = as_operator(source, theta)
    tol = Tolerance.resolve(op.dtype, rtol=rtol, atol=atol)
    steps = DEFAULT_INERTIA_STEPS if lanczos_steps is None else lanczos_steps
    sd = slq(op, lanczos_steps=steps, probes=probes, seed=seed)
    return inertia_from_density(
        sd, rtol=tol.rtol, atol=tol.atol, confidence=confidence, variance=variance
    )
