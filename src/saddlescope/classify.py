"""Telling minima from saddles: the verdict at θ from the Hessian's eigenvalues.

At θ with ‖∇L‖ ≤ grad_tol, the eigenvalues at the threshold max(atol, rtol·max|λ|) decide: all
above → strict minimum; all below its negative → strict maximum; both signs → saddle. With zero
eigenvalues and only one sign besides, the second-order test is silent, so the loss is probed
along the null directions u (both signs, several radii r): a significant decrease
L(θ ± r·u) − L(θ) < −(r·|gᵀu| + loss_tol) at a min-like point makes it a (higher-order) saddle;
a rise on both sides of every null direction makes it a non-strict minimum; anything else stays
"degenerate", with the probes as evidence. A known lower bound of the loss settles a min-like
point at that bound as a (global) minimum.

A critical point of a piecewise-linear (ReLU-type) network that sits on an activation boundary
is "on-kink": ∇L jumps there and the Hessian autograd returns is one linear region's, not the
local picture (:func:`~saddlescope.nonsmooth.kinks.kink_check`, its evidence in
``CriticalPoint.kink``).

The verdict is the first of a short chain of rules that applies (:data:`RULES`): not critical,
on a kink, the second-order test, the loss at its lower bound, probing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from saddlescope.checks import check_finite, check_int, check_positive
from saddlescope.cost import DEFAULT_MAX_DENSE_SECONDS, PathChoice, choose_path
from saddlescope.critical_point import CriticalPoint, Kind, Probe, ProbeVerdict
from saddlescope.errors import InvalidInputError
from saddlescope.hessian import HessianOperator
from saddlescope.inertia import DEFAULT_INERTIA_STEPS, InertiaEstimate, estimate_inertia
from saddlescope.negative_curvature import negative_curvature_direction
from saddlescope.nonsmooth.kinks import KinkCheck, kink_check
from saddlescope.objective import Objective
from saddlescope.precision import refuse_imprecise_verdict
from saddlescope.progress import ProgressOption, product_progress
from saddlescope.spectrum import DEFAULT_K, Spectrum, dense_fits, hessian_spectrum
from saddlescope.tolerance import Tolerance

__all__ = ["CriticalPoint", "Probe", "classify"]

DEFAULT_PROBE_RADII = (1e-4, 1e-3, 1e-2, 1e-1)
MAX_PROBE_DIRECTIONS = 16


def _loss_tol(loss: float, dtype: torch.dtype) -> float:
    return 1e3 * torch.finfo(dtype).eps * max(1.0, abs(loss))


@dataclass(frozen=True, eq=False)
class _Point:
    """What the rules look at: the point, its gradient and spectrum, and the question's terms."""

    obj: Objective
    theta: Tensor
    loss: float
    grad: Tensor
    grad_norm: float
    spectrum: Spectrum
    tolerance: Tolerance
    loss_lower_bound: float | None
    radii: tuple[float, ...]
    seed: int

    @property
    def has_neg(self) -> bool:
        return bool(self.spectrum.eigenvalues[0] < -self.spectrum.threshold)

    @property
    def has_pos(self) -> bool:
        return bool(self.spectrum.eigenvalues[-1] > self.spectrum.threshold)

    @property
    def n_zero(self) -> int:
        """Zero eigenvalues among those held (all of them when the spectrum is complete)."""
        lam = self.spectrum.eigenvalues
        return int((lam.abs() <= self.spectrum.threshold).sum())


@dataclass(frozen=True)
class _Verdict:
    kind: Kind
    strict: bool | None
    resolution: str
    escape: bool = True  # keep the negative-curvature escape direction
    probes: tuple[Probe, ...] = ()
    null_escape: Tensor | None = None  # a probed direction that fell, when no eigenvector does
    kink: KinkCheck | None = None  # the evidence of an on-kink verdict


def _not_critical(p: _Point) -> _Verdict | None:
    grad_tol = p.tolerance.grad_tol
    if p.grad_norm <= grad_tol:
        return None
    why = f"‖g‖ = {p.grad_norm:.3g} > grad_tol = {grad_tol:g}: not a critical point"
    return _Verdict("not-critical", None, why)


def _on_kink(p: _Point) -> _Verdict | None:
    check = kink_check(p.obj, p.theta, seed=p.seed)
    if not check.on_kink:
        return None
    why = (
        f"on an activation boundary (first-order distance {check.distance:.3g} ≤ "
        f"{check.radius:g}: {check.nearest}): the Hessian is one linear region's, not the "
        "local picture"
    )
    return _Verdict("on-kink", None, why, escape=False, kink=check)


def _second_order(p: _Point) -> _Verdict | None:
    complete = p.spectrum.complete
    if p.has_neg and p.has_pos:
        why = "second-order test: eigenvalues of both signs"
        return _Verdict("saddle", p.n_zero == 0 if complete else None, why)
    if p.n_zero == 0 and (complete or p.has_neg != p.has_pos):
        sign = "positive" if p.has_pos else "negative"
        kind: Kind = "minimum" if p.has_pos else "maximum"
        return _Verdict(kind, True, f"second-order test: every eigenvalue {sign}")
    return None


def _at_lower_bound(p: _Point) -> _Verdict | None:
    bound = p.loss_lower_bound
    if p.has_neg or bound is None or p.loss > bound + _loss_tol(p.loss, p.obj.dtype):
        return None
    why = f"degenerate (n0={p.n_zero}); the loss is at its lower bound {bound:g}"
    return _Verdict("minimum", False, why, escape=False)


def _by_probing(p: _Point) -> _Verdict:
    null_dirs = _null_directions(p.spectrum, p.seed)
    if null_dirs is None:
        why = "degenerate; eigenvectors of the null space were not computed, so no probe"
        return _Verdict("degenerate", False, why)
    probes = _probe(p.obj, p.theta, p.loss, p.grad, null_dirs, p.radii)
    local = _local_verdicts(probes)
    fell = [q for q in local if q.verdict == "fall"]
    rose = [q for q in local if q.verdict == "rise"]
    evidence = (
        f"degenerate (n0={p.n_zero}); probed {null_dirs.shape[1]} null directions (eigenvectors "
        f"and random mixtures) at radii {list(p.radii)}, each side judged at its smallest "
        "telling radius"
    )
    kind: Kind = "degenerate"
    why = f"{evidence}: inconclusive"
    if (p.has_pos or rose) and (p.has_neg or fell):
        kind, why = "saddle", f"{evidence}: the loss falls along some and rises along others"
    elif not p.has_neg and len(rose) == len(local):
        kind, why = "minimum", f"{evidence}: the loss rises on both sides of every one"
    elif not p.has_pos and len(fell) == len(local):
        kind, why = "maximum", f"{evidence}: the loss falls on both sides of every one"
    null_escape = None
    if kind == "saddle" and fell:
        best = min(fell, key=lambda q: q.delta_loss)
        null_escape = best.sign * null_dirs[:, best.direction]
    return _Verdict(kind, False, why, probes=tuple(probes), null_escape=null_escape)


RULES: tuple[Callable[[_Point], _Verdict | None], ...] = (
    _not_critical,
    _on_kink,
    _second_order,
    _at_lower_bound,
    _by_probing,
)


def classify(
    obj: Objective,
    theta: Tensor,
    *,
    grad_tol: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    loss_lower_bound: float | None = None,
    probe_radii: tuple[float, ...] = DEFAULT_PROBE_RADII,
    k: int | None = None,
    estimate: bool | None = None,
    max_dense_seconds: float = DEFAULT_MAX_DENSE_SECONDS,
    progress: ProgressOption = None,
    seed: int = 0,
) -> CriticalPoint:
    """Classify θ as minimum, maximum, saddle, degenerate, on-kink or not-critical (module doc).

    A critical point of a bfloat16 or float16 model is refused when its products' rounding
    (measured against float32, :mod:`saddlescope.precision`) could flip the verdict.

    With ``k=None`` the path is chosen by estimated time (:func:`~saddlescope.cost.choose_path`,
    said in :attr:`CriticalPoint.path`): every eigenvalue by a dense Hessian (exact inertia,
    index, minimum ratio) when it fits the memory budget and is quick enough, else the extreme
    pairs by Lanczos, which still decide the kind, with the inertia estimated
    (:func:`~saddlescope.inertia.estimate_inertia`, marked as an estimate with error bars).

    Args:
        obj: the objective.
        theta: the parameters to classify.
        grad_tol: θ is critical when ‖∇L(θ)‖ ≤ grad_tol (default by dtype, see
            :mod:`saddlescope.tolerance`).
        rtol: the eigenvalues' zero band relative to max|λ| (default by dtype).
        atol: the zero band's absolute floor (default 0).
        loss_lower_bound: a known lower bound of the loss (e.g. 0 for a squared error): a
            degenerate min-like point at that loss is then a minimum.
        probe_radii: the radii at which a degenerate point's null directions are probed.
        k: extreme eigenpairs per end by Lanczos; None (default) chooses dense or Lanczos
            (k = 6) by estimated time.
        estimate: estimate the inertia (SLQ, with error bars) when the spectrum is partial;
            None (default): only at a critical point (‖g‖ ≤ grad_tol), where index and
            minimum ratio mean something.
        max_dense_seconds: with ``k=None``, dense is taken when estimated within this many
            seconds, or no slower than Lanczos.
        progress: a progress bar over the products: None (default) for stages estimated over
            a few seconds, True always, False never, or a callable ``f(done, total, stage)``
            (see :mod:`saddlescope.progress`).
        seed: seeds Lanczos, the estimate, the timed product and the random probe mixtures.

    >>> import torch
    >>> from saddlescope import classify, toy
    >>> cp = classify(toy.worked_example_objective(), torch.zeros(2))
    >>> cp.kind, cp.index, cp.minimum_ratio
    ('saddle', 0.5, 0.5)
    """
    radii = _check_options(probe_radii, max_dense_seconds, loss_lower_bound, k)
    tolerance = Tolerance.resolve(obj.dtype, grad_tol=grad_tol, rtol=rtol, atol=atol)
    theta = obj.check_theta(theta)
    loss, g = obj.loss_and_grad(theta)
    grad_norm = float(torch.linalg.vector_norm(g))
    if estimate is None:
        estimate = grad_norm <= tolerance.grad_tol
    op = obj.hessian_operator(theta)  # one set of gradient graphs for the spectrum and estimate
    g = g.to(op.dtype)  # a half-precision model's gradient, in the curvature's working dtype
    path = None
    if k is None:
        products = _lanczos_products(op.shape[0], estimate)
        path = choose_path(
            op, products, max_dense_seconds=max_dense_seconds, fits=dense_fits(op), seed=seed
        )
        path = obj.reducer.broadcast(path)  # timed: the ranks take rank 0's choice
    spectrum, inertia = _spectrum(op, k, path, tolerance, estimate, progress, seed)
    if grad_norm <= tolerance.grad_tol:
        refuse_imprecise_verdict(obj, theta, spectrum, seed, op=op)
    point = _Point(
        obj, theta, float(loss), g, grad_norm, spectrum, tolerance, loss_lower_bound, radii, seed
    )
    verdict = next(v for v in (rule(point) for rule in RULES) if v is not None)
    escape, curvature = negative_curvature_direction(spectrum, g)
    if not verdict.escape:
        escape, curvature = None, None
    elif escape is None:
        escape = verdict.null_escape
    return CriticalPoint(
        theta=theta.detach().clone(),
        loss=point.loss,
        grad_norm=point.grad_norm,
        tolerance=tolerance,
        spectrum=spectrum,
        kind=verdict.kind,
        strict=verdict.strict,
        resolution=verdict.resolution,
        escape_direction=escape,
        escape_curvature=curvature,
        probes=verdict.probes,
        objective=obj.describe(),
        inertia_estimate=inertia,
        path=path,
        kink=verdict.kink,
    )


def _check_options(
    probe_radii: tuple[float, ...],
    max_dense_seconds: float,
    loss_lower_bound: float | None,
    k: int | None,
) -> tuple[float, ...]:
    """The probe radii, sorted, once every option is checked (clear errors otherwise)."""
    radii = tuple(sorted(check_positive("probe radius", r) for r in probe_radii))
    if not radii:
        raise InvalidInputError("probe_radii must hold at least one radius, e.g. (1e-3, 1e-2)")
    if not _non_negative(max_dense_seconds):
        raise InvalidInputError(
            f"max_dense_seconds must be a number ≥ 0 (math.inf: dense whenever it fits), got "
            f"{max_dense_seconds!r}"
        )
    if loss_lower_bound is not None:
        check_finite("loss_lower_bound", loss_lower_bound)
    if k is not None:
        check_int("k", k, 1)
    return radii


def _non_negative(x: Any) -> bool:
    try:
        return not isinstance(x, bool) and float(x) >= 0
    except (TypeError, ValueError):
        return False


def _lanczos_products(n: int, estimate: bool) -> int:
    """The most products the Lanczos path takes: its basis, and the estimate's steps."""
    return min(n, max(20 * DEFAULT_K, 100)) + (min(n, DEFAULT_INERTIA_STEPS) if estimate else 0)


def _spectrum(
    op: HessianOperator,
    k: int | None,
    path: PathChoice | None,
    tolerance: Tolerance,
    estimate: bool,
    progress: ProgressOption,
    seed: int,
) -> tuple[Spectrum, InertiaEstimate | None]:
    """The spectrum on the chosen path, and the inertia estimate when it is partial."""
    n, t = op.shape[0], None if path is None else path.product_seconds
    if path is not None and path.method == "dense":
        stage, total, k = "dense Hessian", n, None
    else:
        stage, total = "Lanczos", min(n, max(20 * (k or DEFAULT_K), 100))
        k = k or DEFAULT_K
    expected = None if t is None else total * t
    with product_progress(op, total, stage, show=progress, expected_seconds=expected):
        spectrum = hessian_spectrum(op, k=k, rtol=tolerance.rtol, atol=tolerance.atol, seed=seed)
    if not estimate or spectrum.complete:
        return spectrum, None
    steps = min(n, DEFAULT_INERTIA_STEPS)
    expected = None if t is None else steps * t
    with product_progress(op, steps, "inertia estimate", show=progress, expected_seconds=expected):
        est = estimate_inertia(op, rtol=spectrum.rtol, atol=spectrum.atol, seed=seed)
    return spectrum, est


def _null_directions(spectrum: Spectrum, seed: int) -> Tensor | None:
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
        verdict: ProbeVerdict = "fall" if delta < -margin else "rise" if delta > margin else "flat"
        probes.append(Probe(d, s, r, delta, verdict))
    return probes
