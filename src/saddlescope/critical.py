"""Finding critical points and telling minima from saddles.

**Classification** (:func:`classify`). At θ with ‖∇L‖ ≤ grad_tol, the Hessian's eigenvalues at the
tolerance tol = max(atol, rtol·max|λ|) decide: all > tol → strict minimum; all < −tol → strict
maximum; both signs → saddle. With zero eigenvalues and only one sign besides, the second-order
test is silent, so the loss is probed along the null directions u (both signs, several radii r):
a significant decrease L(θ ± r·u) − L(θ) < −(r·|gᵀu| + loss_tol) at a min-like point makes it a
(higher-order) saddle; a rise on both sides of every null direction makes it a non-strict
minimum; anything else stays "degenerate", with the probes as evidence. A known lower bound of
the loss settles a min-like point at that bound as a (global) minimum.

**Search** (:func:`find_critical_point`). Critical points of any kind are the zeros of g = ∇L, i.e.
the minima of ½‖g‖², whose gradient is H·g:

* ``"newton-mr"`` (Roosta et al., 2018): p = MINRES(H, −g) from HVPs only, then a backtracking
  (Armijo) line search on ‖g‖² — quadratic convergence near non-degenerate points, and
  well-defined (pseudo-inverse-like) steps where H is singular or indefinite;
* ``"lm"``: Levenberg–Marquardt on the gradient system, p = −(H² + μI)⁻¹H·g from a dense
  eigendecomposition, μ adapted by the gain ratio (Nielsen's rule): pseudo-inverse Newton where
  the quadratic model holds, damped towards −H·g where it does not. For models whose dense
  Hessian fits; the most robust of the three on small networks;
* ``"gradnorm"``: gradient descent on ½‖g‖² along −H·g, the classic baseline.

A search that stalls with ‖g‖ large while g lies (nearly) in the null space of H is at a
**gradient-flat** point (Frye et al., 2020): the flatness ‖H·p + g‖/‖g‖ (p the MINRES solution)
is near 1 there. Such points are reported as gradient-flat, never as critical points.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from scipy.sparse.linalg import minres
from torch import Tensor

from saddlescope.checks import check_choice, check_positive
from saddlescope.errors import InvalidInputError, NonFiniteError
from saddlescope.inertia import InertiaEstimate, estimate_inertia
from saddlescope.objective import Objective
from saddlescope.spectrum import Spectrum, hessian_spectrum
from saddlescope.tolerance import (
    FLAT_TOL,
    MINRES_RTOL,
    Inertia,
    Tolerance,
    default_grad_tol,
)

__all__ = [
    "CriticalPoint",
    "CriticalPointSearch",
    "Probe",
    "SearchStep",
    "classify",
    "find_critical_point",
    "gradient_flatness",
]

Kind = Literal["minimum", "maximum", "saddle", "degenerate", "not-critical"]
DEFAULT_PROBE_RADII = (1e-4, 1e-3, 1e-2, 1e-1)
MAX_PROBE_DIRECTIONS = 16


@dataclass(frozen=True)
class Probe:
    """One probe of the loss along a null direction: ΔL = L(θ + sign·radius·u) − L(θ)."""

    direction: int  # index into the probed directions (eigenvector order, random ones after)
    sign: int
    radius: float
    delta_loss: float
    verdict: Literal["rise", "fall", "flat"]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True, eq=False)
class CriticalPoint:
    """The verdict at θ: kind, inertia, index, minimum ratio, tolerance and the way out.

    ``inertia`` is exact when the whole spectrum was computed, an estimate with error bars
    (from :attr:`inertia_estimate`) when only extreme eigenvalues were, and None when neither.
    ``escape_direction`` is a unit vector along which the loss decreases: the eigenvector of the
    most negative eigenvalue (sign chosen so that gᵀu ≤ 0), or, at a higher-order saddle, the
    probed null direction that fell furthest.
    """

    theta: Tensor
    loss: float
    grad_norm: float
    tolerance: Tolerance
    spectrum: Spectrum
    kind: Kind
    strict: bool | None
    resolution: str
    escape_direction: Tensor | None
    escape_curvature: float | None
    probes: tuple[Probe, ...] = ()
    objective: dict[str, Any] = field(default_factory=dict)
    inertia_estimate: InertiaEstimate | None = None  # SLQ counts when only extremes were computed

    @property
    def inertia(self) -> Inertia | None:
        """(n₋, n₀, n₊): exact from a complete spectrum, else estimated (with bars), else None."""
        exact = self.spectrum.inertia
        if exact is not None:
            return exact
        return None if self.inertia_estimate is None else self.inertia_estimate.inertia

    @property
    def is_estimate(self) -> bool:
        """True when index and minimum ratio are SLQ estimates (see :attr:`inertia_estimate`)."""
        return self.inertia is not None and self.inertia.estimated

    @property
    def index(self) -> float | None:
        """n₋/n, the fraction of negative eigenvalues (Dauphin et al.'s α); estimated if
        :attr:`is_estimate` (± ``inertia.index_err``), None if neither exact nor estimated.
        """
        return None if self.inertia is None else self.inertia.index

    @property
    def minimum_ratio(self) -> float | None:
        """n₊/n, the fraction of positive eigenvalues: 1 at a strict local minimum; estimated
        if :attr:`is_estimate` (± ``inertia.minimum_ratio_err``).
        """
        return None if self.inertia is None else self.inertia.minimum_ratio

    @property
    def threshold(self) -> float:
        """The zero band's half-width: |λ| ≤ threshold counts as zero."""
        return self.spectrum.threshold

    def predicted_decrease(self, t: float) -> float | None:
        """½·λ·t², the quadratic model's change of loss for a step t along the escape direction."""
        return None if self.escape_curvature is None else 0.5 * self.escape_curvature * t * t

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "strict": self.strict,
            "resolution": self.resolution,
            "loss": self.loss,
            "grad_norm": self.grad_norm,
            "tolerance": self.tolerance.to_dict(),
            "threshold": self.threshold,
            "inertia": None if self.inertia is None else self.inertia.to_dict(),
            "index": self.index,
            "minimum_ratio": self.minimum_ratio,
            "is_estimate": self.is_estimate,
            "inertia_estimate": None
            if self.inertia_estimate is None
            else self.inertia_estimate.to_dict(),
            "escape_curvature": self.escape_curvature,
            "escape_direction": None
            if self.escape_direction is None
            else self.escape_direction.tolist(),
            "theta": self.theta.tolist(),
            "spectrum": self.spectrum.to_dict(),
            "probes": [p.to_dict() for p in self.probes],
            "objective": self.objective,
        }

    def __str__(self) -> str:
        strict = "" if self.strict is None else (" (strict)" if self.strict else " (not strict)")
        lines = [
            f"{self.kind}{strict} — {self.resolution}",
            f"  loss {self.loss:.6g}, ‖g‖ {self.grad_norm:.3g} (grad_tol {self.tolerance.grad_tol:g})",
            f"  {self.spectrum}",
        ]
        if self.is_estimate and self.inertia_estimate is not None:
            est, bars = self.inertia_estimate, self.inertia_estimate.inertia
            lines.append(
                f"  index ≈ {bars.index:.4g} ± {bars.index_err:.2g}, minimum ratio ≈ "
                f"{bars.minimum_ratio:.4g} ± {bars.minimum_ratio_err:.2g} (SLQ estimate, "
                f"{100 * est.confidence:g} % bars, {est.hvps} HVPs)"
            )
        elif self.index is not None:
            lines.append(f"  index {self.index:.4g}, minimum ratio {self.minimum_ratio:.4g}")
        if self.escape_curvature is not None:
            lines.append(f"  escape along the eigenvector of λ = {self.escape_curvature:.6g}")
        elif self.escape_direction is not None:
            lines.append("  escape along a null direction where the loss falls (higher order)")
        return "\n".join(lines)


def _loss_tol(loss: float, dtype: torch.dtype) -> float:
    return 1e3 * torch.finfo(dtype).eps * max(1.0, abs(loss))


def classify(
    obj: Objective,
    theta: Tensor,
    *,
    grad_tol: float | None = None,
    rtol: float | None = None,
    atol: float = 0.0,
    loss_lower_bound: float | None = None,
    probe_radii: tuple[float, ...] = DEFAULT_PROBE_RADII,
    k: int | None = None,
    estimate: bool = True,
    seed: int = 0,
) -> CriticalPoint:
    """Classify θ as minimum, maximum, saddle, degenerate or not-critical, from H(θ)'s spectrum.

    Uses every eigenvalue when the dense Hessian fits (exact counts, index, minimum ratio);
    otherwise the ``k`` extreme pairs at each end by Lanczos, which still decide the kind, and —
    with ``estimate=True`` — :func:`~saddlescope.density.estimate_inertia` for the index and
    the minimum ratio, marked as estimates with error bars (``is_estimate``, ``inertia``).
    ``loss_lower_bound`` (e.g. 0 for a squared error) lets a
    degenerate min-like point at that loss be declared a minimum.

    >>> from saddlescope import classify, toy
    >>> cp = classify(toy.worked_example_objective(), torch.zeros(2))
    >>> cp.kind, cp.index, cp.minimum_ratio
    ('saddle', 0.5, 0.5)
    """
    radii = tuple(sorted(check_positive("probe radius", r) for r in probe_radii))
    if not radii:
        raise InvalidInputError("probe_radii must hold at least one radius, e.g. (1e-3, 1e-2)")
    theta = obj.check_theta(theta)
    loss_t, g = obj.loss_and_grad(theta)
    loss, grad_norm = float(loss_t), float(torch.linalg.vector_norm(g))
    tolerance = Tolerance.resolve(obj.dtype, grad_tol=grad_tol, rtol=rtol, atol=atol)
    grad_tol = tolerance.grad_tol
    spectrum = hessian_spectrum(
        obj, theta, k=k, rtol=tolerance.rtol, atol=tolerance.atol, seed=seed
    )
    tol = spectrum.threshold
    lam = spectrum.eigenvalues
    has_neg, has_pos = bool(lam[0] < -tol), bool(lam[-1] > tol)
    inertia = None
    if estimate and not spectrum.complete:
        inertia = estimate_inertia(obj, theta, rtol=spectrum.rtol, atol=spectrum.atol, seed=seed)
    common = {
        "inertia_estimate": inertia,
        "theta": theta.detach().clone(),
        "loss": loss,
        "grad_norm": grad_norm,
        "tolerance": tolerance,
        "spectrum": spectrum,
        "objective": obj.describe(),
    }
    escape, curvature = _negative_direction(spectrum, g)

    if grad_norm > grad_tol:
        resolution = f"‖g‖ = {grad_norm:.3g} > grad_tol = {grad_tol:g}: not a critical point"
        return CriticalPoint(
            kind="not-critical",
            strict=None,
            resolution=resolution,
            escape_direction=escape,
            escape_curvature=curvature,
            **common,
        )

    complete = spectrum.complete
    n_zero = int((lam.abs() <= tol).sum())  # of the held eigenvalues: all of them when complete
    if has_neg and has_pos:
        return CriticalPoint(
            kind="saddle",
            strict=n_zero == 0 if complete else None,
            resolution="second-order test: eigenvalues of both signs",
            escape_direction=escape,
            escape_curvature=curvature,
            **common,
        )
    if n_zero == 0 and (complete or has_neg != has_pos):
        kind: Kind = "minimum" if has_pos else "maximum"
        sign = "positive" if has_pos else "negative"
        return CriticalPoint(
            kind=kind,
            strict=True,
            resolution=f"second-order test: every eigenvalue {sign}",
            escape_direction=escape,
            escape_curvature=curvature,
            **common,
        )

    # Degenerate: zero eigenvalues and at most one sign besides. Look further.
    if (
        not has_neg
        and loss_lower_bound is not None
        and loss <= loss_lower_bound + _loss_tol(loss, obj.dtype)
    ):
        return CriticalPoint(
            kind="minimum",
            strict=False,
            resolution=f"degenerate (n0={n_zero}); "
            f"the loss is at its lower bound {loss_lower_bound:g}",
            escape_direction=None,
            escape_curvature=None,
            **common,
        )
    null_dirs = _null_directions(spectrum, obj, seed)
    if null_dirs is None:
        return CriticalPoint(
            kind="degenerate",
            strict=False,
            resolution="degenerate; eigenvectors of the null space were not computed, so no probe",
            escape_direction=escape,
            escape_curvature=curvature,
            **common,
        )
    probes = _probe(obj, theta, loss, g, null_dirs, radii)
    local = _local_verdicts(probes)
    fell = [p for p in local if p.verdict == "fall"]
    rose = [p for p in local if p.verdict == "rise"]
    n_dirs = null_dirs.shape[1]
    rises_everywhere = len(rose) == len(local)
    falls_everywhere = len(fell) == len(local)
    evidence = (
        f"degenerate (n0={n_zero}); probed {n_dirs} null directions (eigenvectors and random "
        f"mixtures) at radii {list(radii)}, each side judged at its smallest telling radius"
    )
    kind, strict, why = "degenerate", False, f"{evidence}: inconclusive"
    if (has_pos or rose) and (has_neg or fell):
        kind, why = "saddle", f"{evidence}: the loss falls along some and rises along others"
    elif not has_neg and rises_everywhere:
        kind, why = "minimum", f"{evidence}: the loss rises on both sides of every one"
    elif not has_pos and falls_everywhere:
        kind, why = "maximum", f"{evidence}: the loss falls on both sides of every one"
    if kind == "saddle" and escape is None and fell:
        best = min(fell, key=lambda p: p.delta_loss)
        escape = best.sign * null_dirs[:, best.direction]
    return CriticalPoint(
        kind=kind,  # type: ignore[arg-type]
        strict=strict,
        resolution=why,
        escape_direction=escape,
        escape_curvature=curvature,
        probes=tuple(probes),
        **common,
    )


def _negative_direction(spectrum: Spectrum, g: Tensor) -> tuple[Tensor | None, float | None]:
    """Unit eigenvector of the most negative eigenvalue (if below −tol), signed so gᵀu ≤ 0."""
    if spectrum.eigenvectors is None or spectrum.min >= -spectrum.threshold:
        return None, None
    u = spectrum.eigenvectors[:, 0].clone()
    u = u / torch.linalg.vector_norm(u)
    dot = float(g @ u)
    if dot > 0 or (dot == 0 and float(u[u.abs().argmax()]) < 0):
        u = -u  # against the gradient; at g = 0, a deterministic sign (largest entry positive)
    return u, spectrum.min


def _null_directions(spectrum: Spectrum, obj: Objective, seed: int) -> Tensor | None:
    """Eigenvectors with |λ| ≤ tol (closest to zero first) plus two random unit mixtures of them."""
    if spectrum.eigenvectors is None:
        return None
    lam = spectrum.eigenvalues
    zero = torch.nonzero(lam.abs() <= spectrum.threshold).flatten()
    zero = zero[torch.argsort(lam[zero].abs())][:MAX_PROBE_DIRECTIONS]
    basis = spectrum.eigenvectors[:, zero.to(spectrum.eigenvectors.device)]
    if basis.shape[1] > 1:
        gen = torch.Generator().manual_seed(seed)
        mix = torch.randn(basis.shape[1], 2, generator=gen, dtype=torch.float64)
        mixed = basis @ mix.to(basis)
        basis = torch.cat([basis, mixed / torch.linalg.vector_norm(mixed, dim=0)], dim=1)
    return basis


def _local_verdicts(probes: list[Probe]) -> list[Probe]:
    """Per (direction, sign): the probe at the smallest radius that is not flat (else the last).

    The local shape is decided nearest θ: a fall far out (past a rise) is another valley, not
    a way down from this point.
    """
    sides: dict[tuple[int, int], list[Probe]] = {}
    for p in probes:
        sides.setdefault((p.direction, p.sign), []).append(p)
    out = []
    for side in sides.values():
        side.sort(key=lambda p: p.radius)
        out.append(next((p for p in side if p.verdict != "flat"), side[-1]))
    return out


def _probe(
    obj: Objective, theta: Tensor, loss: float, g: Tensor, dirs: Tensor, radii: tuple[float, ...]
) -> list[Probe]:
    tol = _loss_tol(loss, obj.dtype)
    slopes = (g @ dirs).abs()
    steps = [(d, s, r) for d in range(dirs.shape[1]) for s in (1, -1) for r in radii]
    thetas = torch.stack([theta + s * r * dirs[:, d] for d, s, r in steps])
    deltas = obj.losses(thetas) - loss
    probes = []
    for (d, s, r), delta in zip(steps, deltas.tolist()):
        margin = r * float(slopes[d]) + tol
        verdict = "fall" if delta < -margin else "rise" if delta > margin else "flat"
        probes.append(Probe(d, s, r, delta, verdict))  # type: ignore[arg-type]
    return probes


# --------------------------------------------------------------------------------------- search
@dataclass(frozen=True)
class SearchStep:
    """One iteration of a critical-point search."""

    step: int
    loss: float
    grad_norm: float
    step_size: float  # ‖Δθ‖ of the step taken
    hvps: int  # cumulative


@dataclass(frozen=True, eq=False)
class CriticalPointSearch:
    """Where a critical-point search ended, and how.

    ``status`` is "converged" (‖g‖ ≤ grad_tol), "gradient-flat" (stalled with g nearly in the
    null space of H: ``flatness`` ≥ flat_tol), "stalled" (no line-search step made progress) or
    "max-steps". Only "converged" is a critical point.
    """

    theta: Tensor
    method: str
    status: str
    converged: bool
    loss: float
    grad_norm: float
    grad_tol: float
    steps: int
    hvps: int
    grads: int
    seconds: float
    flatness: float | None
    history: tuple[SearchStep, ...]

    @property
    def gradient_flat(self) -> bool:
        return self.status == "gradient-flat"

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "status": self.status,
            "converged": self.converged,
            "gradient_flat": self.gradient_flat,
            "loss": self.loss,
            "grad_norm": self.grad_norm,
            "grad_tol": self.grad_tol,
            "steps": self.steps,
            "hvps": self.hvps,
            "grads": self.grads,
            "seconds": self.seconds,
            "flatness": self.flatness,
            "theta": self.theta.tolist(),
            "history": [s.__dict__ for s in self.history],
        }

    def __str__(self) -> str:
        flat = "" if self.flatness is None else f", flatness {self.flatness:.3g}"
        return (
            f"{self.method}: {self.status} after {self.steps} steps — loss {self.loss:.6g}, "
            f"‖g‖ {self.grad_norm:.3g} (grad_tol {self.grad_tol:g}){flat}; "
            f"{self.hvps} HVPs, {self.grads} gradients, {self.seconds:.3g} s"
        )


def _minres(obj: Objective, theta: Tensor, g: Tensor, rtol: float, maxiter: int):
    """P ≈ argmin ‖H p + g‖ by MINRES; returns (p, H p, products used)."""
    op = obj.linear_operator(theta)
    rhs = (-g).detach().cpu().numpy().astype(op.dtype)
    p_np, _ = minres(op, rhs, rtol=rtol, maxiter=maxiter)
    p = torch.from_numpy(np.ascontiguousarray(p_np)).to(device=obj.device, dtype=obj.dtype)
    Hp = op.op @ p
    return p, Hp, op.num_products


def gradient_flatness(
    obj: Objective,
    theta: Tensor,
    *,
    minres_rtol: float = MINRES_RTOL,
    minres_maxiter: int | None = None,
    grad: Tensor | None = None,
) -> tuple[float, int]:
    """(‖H·p + g‖/‖g‖ with p = MINRES(H, −g), HVPs used): the share of g that H cannot reach.

    Near 0 where g lies in H's range (a Newton step removes it); near 1 where g lies in H's
    (near-)null space — the signature of a gradient-flat point. Pass ``grad`` = ∇L(θ) when it is
    already known, to skip recomputing it.
    """
    theta = obj.check_theta(theta)
    g = obj.grad(theta) if grad is None else obj.check_theta(grad, "grad")
    gn = float(torch.linalg.vector_norm(g))
    if gn == 0:
        return 0.0, 0
    _, Hp, used = _minres(obj, theta, g, minres_rtol, minres_maxiter or min(obj.num_params, 500))
    return float(torch.linalg.vector_norm(Hp + g)) / gn, used


def _loss_and_grad_or_inf(obj: Objective, theta: Tensor) -> tuple[Tensor, Tensor]:
    """(L, ∇L) at a trial point; an overflow there reads as an infinite gradient (step rejected)."""
    try:
        return obj.loss_and_grad(theta)
    except NonFiniteError:
        inf = torch.tensor(math.inf, dtype=obj.dtype, device=obj.device)
        return inf, torch.full_like(theta, math.inf)


def find_critical_point(
    obj: Objective,
    theta0: Tensor,
    *,
    method: Literal["newton-mr", "lm", "gradnorm"] = "newton-mr",
    grad_tol: float | None = None,
    max_steps: int | None = None,
    minres_rtol: float = MINRES_RTOL,
    minres_maxiter: int | None = None,
    flat_tol: float = FLAT_TOL,
    armijo: float = 1e-4,
    min_step: float = 1e-12,
    max_step_norm: float | None = None,
) -> CriticalPointSearch:
    """Search for a point where ∇L = 0 (any kind: minimum, saddle or maximum), from θ0.

    Stops when ‖g‖ ≤ ``grad_tol`` (default: :func:`~saddlescope.tolerance.default_grad_tol`), when no step
    along the search direction lowers ‖g‖² (step size below ``min_step``), or after
    ``max_steps`` (default 200 for Newton-MR and LM, 20,000 for gradnorm). A non-converged
    search whose flatness ‖H·p + g‖/‖g‖ is ≥ ``flat_tol`` is reported as gradient-flat. Every
    step is at most ``max_step_norm`` long (default 10·max(1, ‖θ0‖)): where H is singular and g
    has a component in its null space, MINRES can return a huge null-space component (it is not
    MINRES-QLP), which moves θ far without changing g.

    >>> from saddlescope import find_critical_point, toy
    >>> obj = toy.worked_example_objective()
    >>> res = find_critical_point(obj, torch.tensor([0.9, 1.3], dtype=torch.float64))
    >>> res.converged, abs(float(res.theta[0] * res.theta[1]) - 1) < 1e-9
    (True, True)
    """
    check_choice("method", method, ("newton-mr", "lm", "gradnorm"))
    if method == "lm":
        obj.check_dense_fits()
    grad_tol = check_positive(
        "grad_tol", default_grad_tol(obj.dtype) if grad_tol is None else grad_tol
    )
    check_positive("minres_rtol", minres_rtol)
    check_positive("flat_tol", flat_tol)
    check_positive("armijo", armijo)
    check_positive("min_step", min_step)
    if max_step_norm is not None:
        check_positive("max_step_norm", max_step_norm)
    if armijo >= 0.5:
        raise InvalidInputError(f"armijo must be in (0, 0.5), got {armijo}")
    if max_steps is None:
        max_steps = 20_000 if method == "gradnorm" else 200
    if not isinstance(max_steps, int) or max_steps < 0:
        raise InvalidInputError(f"max_steps must be a non-negative integer, got {max_steps!r}")
    maxiter = minres_maxiter or min(obj.num_params, 500)

    start = time.perf_counter()
    theta = obj.check_theta(theta0).clone()
    if max_step_norm is None:
        max_step_norm = 10 * max(1.0, float(torch.linalg.vector_norm(theta)))
    loss, g = obj.loss_and_grad(theta)
    sq = float(g @ g)
    hvps, grads, alpha = 0, 1, 1.0
    mu, nu = None, 2.0  # Levenberg–Marquardt damping and its growth factor
    history = [SearchStep(0, float(loss), math.sqrt(sq), 0.0, 0)]
    status = "max-steps"
    steps = 0
    for steps in range(1, max_steps + 1):
        if math.sqrt(sq) <= grad_tol:
            status, steps = "converged", steps - 1
            break
        if method == "lm":
            H = obj.hessian(theta)
            hvps += obj.num_params
            lam, U = torch.linalg.eigh(H)
            c = U.mT @ g
            if mu is None:
                mu = 1e-3 * max(float(lam.abs().max()) ** 2, 1e-300)
            while True:
                p = -(U @ (lam / (lam**2 + mu) * c))
                p = p * min(1.0, max_step_norm / max(float(torch.linalg.vector_norm(p)), 1e-300))
                predicted = sq - float((c + lam * (U.mT @ p)).pow(2).sum())  # ‖g‖² − ‖g + Hp‖²
                trial = theta + p
                t_loss, t_g = _loss_and_grad_or_inf(obj, trial)
                grads += 1
                t_sq = float(t_g @ t_g)
                rho = (sq - t_sq) / max(predicted, 1e-300)
                if rho > armijo:
                    mu *= max(1 / 3, 1 - (2 * min(rho, 1.0) - 1) ** 3)
                    nu = 2.0
                    break
                mu, nu = mu * nu, nu * 2
                if mu > 1e30 * max(float(lam.abs().max()) ** 2, 1.0):
                    break
            if rho <= armijo:
                status, steps = "stalled", steps - 1
                break
            step = float(torch.linalg.vector_norm(trial - theta))
            theta, loss, g, sq = trial, t_loss, t_g, t_sq
            history.append(SearchStep(steps, float(loss), math.sqrt(sq), step, hvps))
            continue
        if method == "newton-mr":
            p, Hp, used = _minres(obj, theta, g, minres_rtol, maxiter)
            hvps += used
            slope = float(Hp @ g)  # d/dα ½‖g(θ + αp)‖² at α = 0
            alpha = 1.0
        else:
            Hg = obj.hessian_operator(theta, cache=False) @ g
            hvps += 1
            p, slope = -Hg, -float(Hg @ Hg)
            alpha = min(1e6, alpha * 2)  # try a little longer than last time
        if not slope < 0:
            status, steps = "stalled", steps - 1
            break
        alpha = min(alpha, max_step_norm / max(float(torch.linalg.vector_norm(p)), 1e-300))
        while alpha >= min_step:
            trial = theta + alpha * p
            t_loss, t_g = _loss_and_grad_or_inf(obj, trial)
            grads += 1
            t_sq = float(t_g @ t_g)
            if 0.5 * t_sq <= 0.5 * sq + armijo * alpha * slope:
                break
            alpha *= 0.5
        else:
            status, steps = "stalled", steps - 1
            break
        step = float(torch.linalg.vector_norm(trial - theta))
        theta, loss, g, sq = trial, t_loss, t_g, t_sq
        history.append(SearchStep(steps, float(loss), math.sqrt(sq), step, hvps))
    else:
        if math.sqrt(sq) <= grad_tol:
            status = "converged"

    flatness = None
    if status != "converged":
        flatness, used = gradient_flatness(
            obj, theta, minres_rtol=minres_rtol, minres_maxiter=maxiter, grad=g
        )
        hvps += used
        if flatness >= flat_tol:
            status = "gradient-flat"
    return CriticalPointSearch(
        theta=theta.detach(),
        method=method,
        status=status,
        converged=status == "converged",
        loss=float(loss),
        grad_norm=math.sqrt(sq),
        grad_tol=grad_tol,
        steps=steps,
        hvps=hvps,
        grads=grads,
        seconds=time.perf_counter() - start,
        flatness=flatness,
        history=tuple(history),
    )
