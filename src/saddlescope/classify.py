"""Telling minima from saddles: the verdict at θ from the Hessian's eigenvalues.

At θ with ‖∇L‖ ≤ grad_tol, the eigenvalues at the threshold max(atol, rtol·max|λ|) decide: all
above → strict minimum; all below its negative → strict maximum; both signs → saddle. With zero
eigenvalues and only one sign besides, the second-order test is silent, so the loss is probed
along the null directions u (both signs, several radii r): a significant decrease
L(θ ± r·u) − L(θ) < −(r·|gᵀu| + loss_tol) at a min-like point makes it a (higher-order) saddle;
a rise on both sides of every null direction makes it a non-strict minimum; anything else stays
"degenerate", with the probes as evidence. A known lower bound of the loss settles a min-like
point at that bound as a (global) minimum.

The verdict is the first of a short chain of rules that applies (:data:`RULES`): not critical,
the second-order test, the loss at its lower bound, probing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor

from saddlescope.checks import check_positive
from saddlescope.errors import InvalidInputError
from saddlescope.inertia import InertiaEstimate, estimate_inertia
from saddlescope.negative_curvature import negative_curvature_direction
from saddlescope.objective import Objective
from saddlescope.spectrum import Spectrum, hessian_spectrum
from saddlescope.tolerance import Inertia, Tolerance

__all__ = ["CriticalPoint", "Probe", "classify"]

Kind = Literal["minimum", "maximum", "saddle", "degenerate", "not-critical"]
ProbeVerdict = Literal["rise", "fall", "flat"]
DEFAULT_PROBE_RADII = (1e-4, 1e-3, 1e-2, 1e-1)
MAX_PROBE_DIRECTIONS = 16


@dataclass(frozen=True)
class Probe:
    """One probe of the loss along a null direction: ΔL = L(θ + sign·radius·u) − L(θ).

    ``direction`` indexes the probed directions (eigenvector order, random mixtures after),
    ``sign`` is ±1, ``radius`` the step length, ``delta_loss`` ΔL, and ``verdict`` whether the
    loss rose, fell or stayed flat beyond the first-order slope and rounding.
    """

    direction: int
    sign: int
    radius: float
    delta_loss: float
    verdict: ProbeVerdict

    def to_dict(self) -> dict[str, Any]:
        """The five fields by name."""
        return dict(self.__dict__)

    def __str__(self) -> str:
        return (
            f"Probe(direction {self.direction}, {'+' if self.sign > 0 else '−'}{self.radius:g}: "
            f"ΔL = {self.delta_loss:.3g}, {self.verdict})"
        )


@dataclass(frozen=True, eq=False)
class CriticalPoint:
    """The verdict at θ: kind, inertia, index, minimum ratio, tolerance and the way out.

    ``inertia`` is exact when the whole spectrum was computed, an estimate with error bars
    (from :attr:`inertia_estimate`) when only extreme eigenvalues were, and None when neither.
    ``escape_direction`` is a unit vector along which the loss decreases: the eigenvector of the
    most negative eigenvalue (sign chosen so that gᵀu ≤ 0), or, at a higher-order saddle, the
    probed null direction that fell furthest; ``escape_curvature`` its eigenvalue. ``theta``,
    ``loss`` and ``grad_norm`` describe the point, ``tolerance`` what "critical" and "zero" meant,
    ``spectrum`` the eigenvalues computed, ``kind``/``strict``/``resolution`` the verdict and how
    it was reached, ``probes`` the loss probes of a degenerate point, ``objective`` what the
    objective was (sizes, dtype, device).
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
        """n₋/n, the fraction of negative eigenvalues (Dauphin et al.'s α).

        Estimated if :attr:`is_estimate` (± ``inertia.index_err``); None if neither exact nor
        estimated.
        """
        return None if self.inertia is None else self.inertia.index

    @property
    def minimum_ratio(self) -> float | None:
        """n₊/n, the fraction of positive eigenvalues: 1 at a strict local minimum.

        Estimated if :attr:`is_estimate` (± ``inertia.minimum_ratio_err``).
        """
        return None if self.inertia is None else self.inertia.minimum_ratio

    @property
    def threshold(self) -> float:
        """The zero band's half-width: |λ| ≤ threshold counts as zero."""
        return self.spectrum.threshold

    def predicted_decrease(self, t: float) -> float | None:
        """½·λ·t², the quadratic model's change of loss for a step t along the escape direction.

        Args:
            t: the step length along the (unit) escape direction.
        """
        return None if self.escape_curvature is None else 0.5 * self.escape_curvature * t * t

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain Python values (θ and the escape direction as lists)."""
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
            f"  loss {self.loss:.6g}, ‖g‖ {self.grad_norm:.3g} "
            f"(grad_tol {self.tolerance.grad_tol:g})",
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


def _not_critical(p: _Point) -> _Verdict | None:
    grad_tol = p.tolerance.grad_tol
    if p.grad_norm <= grad_tol:
        return None
    why = f"‖g‖ = {p.grad_norm:.3g} > grad_tol = {grad_tol:g}: not a critical point"
    return _Verdict("not-critical", None, why)


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
    estimate: bool = True,
    seed: int = 0,
) -> CriticalPoint:
    """Classify θ as minimum, maximum, saddle, degenerate or not-critical, from H(θ)'s spectrum.

    Uses every eigenvalue when the dense Hessian fits (exact inertia, index, minimum ratio);
    otherwise the ``k`` extreme pairs at each end by Lanczos, which still decide the kind, and —
    with ``estimate=True`` — :func:`~saddlescope.inertia.estimate_inertia` for the inertia,
    marked as an estimate with error bars.

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
        k: extreme eigenpairs per end by Lanczos; None (default) goes dense when it fits.
        estimate: estimate the inertia (SLQ, with error bars) when the spectrum is partial.
        seed: seeds Lanczos, the estimate and the random probe mixtures.

    >>> import torch
    >>> from saddlescope import classify, toy
    >>> cp = classify(toy.worked_example_objective(), torch.zeros(2))
    >>> cp.kind, cp.index, cp.minimum_ratio
    ('saddle', 0.5, 0.5)
    """
    radii = tuple(sorted(check_positive("probe radius", r) for r in probe_radii))
    if not radii:
        raise InvalidInputError("probe_radii must hold at least one radius, e.g. (1e-3, 1e-2)")
    tolerance = Tolerance.resolve(obj.dtype, grad_tol=grad_tol, rtol=rtol, atol=atol)
    theta = obj.check_theta(theta)
    loss, g = obj.loss_and_grad(theta)
    op = obj.hessian_operator(theta)  # one set of gradient graphs for the spectrum and estimate
    spectrum = hessian_spectrum(op, k=k, rtol=tolerance.rtol, atol=tolerance.atol, seed=seed)
    inertia = None
    if estimate and not spectrum.complete:
        inertia = estimate_inertia(op, rtol=spectrum.rtol, atol=spectrum.atol, seed=seed)
    point = _Point(
        obj,
        theta,
        float(loss),
        g,
        float(torch.linalg.vector_norm(g)),
        spectrum,
        tolerance,
        loss_lower_bound,
        radii,
        seed,
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
    )


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
