"""Finding critical points: zeros of ∇L of any kind (minimum, saddle, maximum).

Critical points are the zeros of g = ∇L, i.e. the minima of ½‖g‖², whose gradient is H·g. A
search runs steps (:mod:`saddlescope.search_steps`: Newton-MR with a line search or inside a
trust region, Levenberg–Marquardt, gradnorm) until ‖g‖ ≤ grad_tol, a step cannot make
progress, or a budget — steps, Hessian-vector products or seconds — runs out, and says which
(``status``).

``method="auto"`` is a driver that switches method when one stalls or crawls (‖g‖ falling less
than tenfold over 50 steps): LM first where the dense Hessian fits (the most robust far away),
Newton-MR otherwise or next; and, where the point is already **minimum-like** — no curvature
below −√(‖g‖·max|λ|), the second-order stationarity scale of Nesterov & Polyak (2006) with a
unit Hessian-Lipschitz length — descent on L itself (saddle-free damped Newton), which reaches
the degenerate minima that ‖g‖²-minimisers approach only linearly; when L can fall no further
(rounding), one ‖g‖² method finishes. A point reached that way is certified the same way
(‖g‖ ≤ grad_tol, then classified by its spectrum), but descent can only reach minima: a crawl
that LM would have ended at a saddle after all may end at a minimum instead. ``phases`` says
which methods ran, for how many steps.

A search that ends without converging is checked for **gradient flatness**
(:mod:`saddlescope.flatness`): the share of g in H's zero band, at the band
:func:`~saddlescope.classify.classify` uses. Where that share is ≥ flat_tol the search ends
"gradient-flat" (Frye et al., 2020), never as a critical point.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from saddlescope.checks import check_choice, check_int, check_positive
from saddlescope.errors import InvalidInputError
from saddlescope.flatness import Flatness, check_flat_tol, gradient_flatness
from saddlescope.hessian import dense_hessian_fits
from saddlescope.lanczos import lanczos
from saddlescope.nonsmooth.kinks import KinkCheck, kink_check
from saddlescope.nonsmooth.regions import RegionTrace
from saddlescope.objective import Objective
from saddlescope.operators import symmetric_eigh
from saddlescope.search_result import CriticalPointSearch, SearchStep
from saddlescope.search_steps import (
    SearchOptions,
    SearchState,
    descent_step,
    gradnorm_step,
    lm_step,
    newton_mr_step,
    newton_tr_step,
)
from saddlescope.tolerance import FLAT_TOL, MINRES_RTOL, Tolerance, default_grad_tol

__all__ = ["METHODS", "CriticalPointSearch", "SearchStep", "find_critical_point"]

SearchMethod = Literal["auto", "newton-mr", "newton-tr", "lm", "gradnorm"]
StepFn = Callable[[Objective, SearchState, SearchOptions], "SearchState | None"]
_PHASES: dict[str, StepFn] = {
    "newton-mr": newton_mr_step,
    "newton-tr": newton_tr_step,
    "lm": lm_step,
    "gradnorm": gradnorm_step,
    "descent": descent_step,  # only inside the driver
}
METHODS: dict[str, StepFn | None] = {
    "auto": None,  # the switching driver
    **{m: step for m, step in _PHASES.items() if m != "descent"},
}
DEFAULT_MAX_STEPS = {"auto": 500, "newton-mr": 200, "newton-tr": 200, "lm": 200, "gradnorm": 20_000}
_MINRES_MAXITER = 500  # MINRES iterations by default: min(n, this)
_WINDOW = 50  # steps over which the driver judges progress
_PROGRESS = 10.0  # ... and the factor ‖g‖ must fall by over them


@dataclass(frozen=True)
class _Budget:
    """When a search must stop whatever its progress."""

    max_steps: int
    max_hvps: float
    deadline: float  # time.perf_counter() value


class _Driver:
    """Which method runs next: a fixed one, or the switching plan of ``method="auto"``."""

    def __init__(self, obj: Objective, method: str) -> None:
        self.auto = method == "auto"
        dense = dense_hessian_fits(obj)
        self.order = ["lm", "newton-mr"] if dense else ["newton-mr"]
        self.phase = self.order[0] if self.auto else method
        self.used = {self.phase}
        self.phases: list[list[Any]] = [[self.phase, 0]]
        self.since_check: list[float] = []

    def crawling(self, grad_norm: float) -> bool:
        """True when ‖g‖ fell less than tenfold over the last window of this phase's steps."""
        self.since_check.append(grad_norm)
        if not self.auto or len(self.since_check) <= _WINDOW:
            return False
        first = self.since_check[-_WINDOW - 1]
        return grad_norm > first / _PROGRESS

    def switch(self, obj: Objective, s: SearchState, stalled: bool) -> bool:
        """Move on in the plan; False when it has nothing to move to.

        To descent where minimum-like; else, when stalled, to the next ‖g‖² method — or from
        descent (once) back to the first, whose steps need no decrease of L to finish.
        """
        if not self.auto:
            return False
        self.since_check = []
        nxt = None
        if "descent" not in self.used and _minimum_like(obj, s):
            nxt = "descent"
        elif stalled and self.phase != "descent":
            nxt = next((m for m in self.order if m not in self.used), None)
        elif stalled and "polish" not in self.used:  # L cannot fall further: finish on ‖g‖²
            nxt = self.order[0]
            self.used.add("polish")
        if nxt is None:
            return False
        self.phase = nxt
        self.used.add(nxt)
        self.phases.append([nxt, 0])
        return True


def _minimum_like(obj: Objective, s: SearchState) -> bool:
    """True when λ_min ≥ −√(‖g‖·max|λ|): no negative curvature the gradient does not swamp."""
    if dense_hessian_fits(obj):
        lam = symmetric_eigh(obj.hessian(s.theta), eigenvectors=False)[0]
        s.hvps += obj.num_params
        low, top = float(lam[0]), float(lam.abs().max())
    else:
        res = lanczos(obj.hessian_operator(s.theta), 1, which="both")
        s.hvps += res.products
        low, top = float(res.eigenvalues[0]), res.scale
    return low >= -math.sqrt(math.sqrt(s.sq) * top)


def _iterate(
    obj: Objective,
    s: SearchState,
    o: SearchOptions,
    driver: _Driver,
    budget: _Budget,
    history: list[SearchStep],
    trace: RegionTrace,
) -> tuple[SearchState, str, int]:
    """Steps until converged, stalled, or a budget runs out: (state, status, steps)."""
    steps = 0
    while True:
        if math.sqrt(s.sq) <= o.grad_tol:
            return s, "converged", steps
        reason = _spent(obj, s, steps, budget)
        if reason:
            return s, reason, steps
        new = _PHASES[driver.phase](obj, s, o)
        if new is None:
            if driver.switch(obj, s, stalled=True):
                continue
            return s, "stalled", steps
        steps += 1
        size = float(torch.linalg.vector_norm(new.theta - s.theta))
        s = new
        driver.phases[-1][1] += 1
        trace.visit(s.theta)
        history.append(
            SearchStep(steps, float(s.loss), math.sqrt(s.sq), size, s.hvps, driver.phase)
        )
        if driver.crawling(math.sqrt(s.sq)):
            driver.switch(obj, s, stalled=False)


def _why_unconverged(
    obj: Objective,
    s: SearchState,
    o: SearchOptions,
    status: str,
    smooth: bool,
    band: tuple[float | None, float | None, float],
) -> tuple[str, KinkCheck | None, Flatness | None]:
    """(status, kink, flatness) of a search that ended: on a kink, or gradient-flat, or as it was.

    ``band`` is the flatness check's (rtol, atol, flat_tol); its products count in ``s.hvps``.
    """
    if status == "converged":
        return status, None, None
    kink = None if smooth else kink_check(obj, s.theta)
    if kink is not None and kink.on_kink:
        return "on-kink", kink, None
    rtol, atol, flat_tol = band
    flatness = gradient_flatness(
        obj, s.theta, grad=s.grad, grad_tol=o.grad_tol, rtol=rtol, atol=atol, flat_tol=flat_tol
    )
    s.hvps += flatness.hvps
    return ("gradient-flat" if flatness.flat else status), kink, flatness


def _spent(obj: Objective, s: SearchState, steps: int, budget: _Budget) -> str:
    """The budget that has run out ("max-steps", "max-hvps", "max-seconds"), or "".

    The clock is each rank's own: the ranks of a distributed objective stop when any is out.
    """
    if steps >= budget.max_steps:
        return "max-steps"
    if s.hvps >= budget.max_hvps:
        return "max-hvps"
    if budget.deadline < math.inf and obj.reducer.any(time.perf_counter() >= budget.deadline):
        return "max-seconds"
    return ""


def _options(
    obj: Objective,
    theta: Tensor,
    grad_norm0: float,
    grad_tol: float | None,
    minres_rtol: float,
    minres_forcing: float,
    minres_maxiter: int | None,
    armijo: float,
    min_step: float,
    max_step_norm: float | None,
) -> SearchOptions:
    """The settings validated, with their defaults filled in."""
    if not 0 < check_positive("armijo", armijo) < 0.5:
        raise InvalidInputError(f"armijo must be in (0, 0.5), got {armijo}")
    if max_step_norm is None:
        max_step_norm = 10 * max(1.0, float(torch.linalg.vector_norm(theta)))
    if minres_maxiter is None:
        minres_maxiter = min(obj.num_params, _MINRES_MAXITER)
    return SearchOptions(
        grad_tol=check_positive(
            "grad_tol", default_grad_tol(obj.dtype) if grad_tol is None else grad_tol
        ),
        minres_rtol=check_positive("minres_rtol", minres_rtol),
        minres_forcing=check_positive("minres_forcing", minres_forcing, allow_zero=True),
        minres_maxiter=check_int("minres_maxiter", minres_maxiter, 1),
        armijo=armijo,
        min_step=check_positive("min_step", min_step),
        max_step_norm=check_positive("max_step_norm", max_step_norm),
        grad_norm0=max(grad_norm0, 1e-300),
    )


def _budget(
    method: str, max_steps: int | None, max_hvps: int | None, max_seconds: float | None
) -> _Budget:
    """The search's budget, validated (each None: steps by method, no HVP or time limit)."""
    steps = DEFAULT_MAX_STEPS[method] if max_steps is None else max_steps
    hvps = math.inf if max_hvps is None else check_int("max_hvps", max_hvps, 0)
    seconds = math.inf if max_seconds is None else check_positive("max_seconds", max_seconds)
    return _Budget(check_int("max_steps", steps, 0), hvps, time.perf_counter() + seconds)


def find_critical_point(
    obj: Objective,
    theta0: Tensor,
    *,
    method: SearchMethod = "newton-mr",
    grad_tol: float | None = None,
    max_steps: int | None = None,
    max_hvps: int | None = None,
    max_seconds: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    flat_tol: float = FLAT_TOL,
    minres_rtol: float = MINRES_RTOL,
    minres_forcing: float = 0.0,
    minres_maxiter: int | None = None,
    armijo: float = 1e-4,
    min_step: float = 1e-12,
    max_step_norm: float | None = None,
) -> CriticalPointSearch:
    """Search for a point where ∇L = 0 (any kind: minimum, saddle or maximum), from θ0.

    Stops when ‖g‖ ≤ ``grad_tol``, when no step can lower its objective ("stalled"), or when a
    budget runs out. A search that did not converge is checked for a kink (piecewise-linear
    models: "on-kink" when θ sits on an activation boundary) and for gradient flatness at the
    zero band (``rtol``, ``atol``): "gradient-flat" when certified flat.

    Args:
        obj: the objective.
        theta0: where to start.
        method: "auto" (the switching driver), "newton-mr" (line search), "newton-tr"
            (trust region), "lm" or "gradnorm" (module docstring and
            :mod:`saddlescope.search_steps`).
        grad_tol: converged when ‖g‖ ≤ grad_tol (default by dtype, see
            :mod:`saddlescope.tolerance`).
        max_steps: the most iterations (default 500 for "auto", 200 for Newton-MR, its
            trust-region form and LM, 20,000 for gradnorm).
        max_hvps: the most Hessian-vector products (default: no limit); a dense Hessian
            counts n.
        max_seconds: the most wall-clock seconds (default: no limit).
        rtol: the zero band of the flatness check relative to max|λ| (default by dtype, as in
            ``classify``).
        atol: the zero band's absolute floor (default 0).
        flat_tol: the share of g in the zero band from which θ is gradient-flat, in (0, 1].
        minres_rtol: the tightest relative residual of Newton-MR's MINRES solves.
        minres_forcing: Newton-MR's (and its trust-region form's) loosest: the solves stop
            at clip(‖g‖/‖g₀‖, minres_rtol, minres_forcing), an Eisenstat–Walker forcing term.
            Default 0, tight solves: a loose cap converged fewer searches on the linear
            networks we measured (``python -m benchmarks.ground_truth --net 16-4-16``,
            docs/benchmarks.md).
        minres_maxiter: MINRES's iterations per solve (default min(n, 500)).
        armijo: the sufficient-decrease constant of the line searches (LM and descent: the
            least gain ratio), in (0, 0.5).
        min_step: the shortest line-search step before the search counts as stalled.
        max_step_norm: the longest step (default 10·max(1, ‖θ0‖); also the trust region's
            first and largest radius): where H is singular and g
            has a component in its null space, MINRES can return a huge null-space component
            (it is not MINRES-QLP), which moves θ far without changing g.

    >>> import torch
    >>> from saddlescope import find_critical_point, toy
    >>> obj = toy.worked_example_objective()
    >>> res = find_critical_point(obj, torch.tensor([0.9, 1.3], dtype=torch.float64))
    >>> res.converged, abs(float(res.theta[0] * res.theta[1]) - 1) < 1e-8
    (True, True)
    """
    check_choice("method", method, tuple(METHODS))
    if method == "lm":
        obj.check_dense_fits()
    budget = _budget(method, max_steps, max_hvps, max_seconds)
    start = time.perf_counter()
    theta = obj.check_theta(theta0).clone()
    obj.layout.require_finite_vector(theta)
    loss, g = obj.loss_and_grad(theta)
    s = SearchState(theta, loss, g, float(g @ g))
    o = _options(
        obj, theta, math.sqrt(s.sq), grad_tol, minres_rtol, minres_forcing, minres_maxiter,
        armijo, min_step, max_step_norm,
    )  # fmt: skip
    Tolerance.resolve(obj.dtype, rtol=rtol, atol=atol)  # refused now, not after the search
    check_flat_tol(flat_tol)
    history = [SearchStep(0, float(loss), math.sqrt(s.sq), 0.0, 0, "")]
    driver, trace = _Driver(obj, method), RegionTrace(obj)
    trace.visit(theta)
    s, status, steps = _iterate(obj, s, o, driver, budget, history, trace)
    smooth = trace.patterns[0] == ""
    status, kink, flatness = _why_unconverged(obj, s, o, status, smooth, (rtol, atol, flat_tol))
    return CriticalPointSearch(
        theta=s.theta.detach(),
        method=method,
        status=status,
        converged=status == "converged",
        loss=float(s.loss),
        grad_norm=math.sqrt(s.sq),
        grad_tol=o.grad_tol,
        steps=steps,
        hvps=s.hvps,
        grads=s.grads,
        seconds=time.perf_counter() - start,
        flatness=flatness,
        history=tuple(history),
        phases=tuple((m, k) for m, k in driver.phases),
        crossings=None if smooth else len(trace.crossings),
        kink=kink,
    )
