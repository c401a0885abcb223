"""The steps of a critical-point search: one small function per method, over a shared state.

Each step takes the objective, the search's :class:`SearchState` and its :class:`SearchOptions`,
and returns the state at the accepted point, or None when no step could make progress. Three
steps minimise ½‖g‖² (they reach critical points of any kind) and one, used only by the
switching driver, minimises L itself:

* :func:`newton_mr_step` (Roosta et al., 2018; Liu & Roosta, 2022): p = MINRES(H, −g) stopped at
  the forcing term η = clip(‖g‖/‖g₀‖, minres_rtol, minres_forcing) — looser far away, tight
  near, the Eisenstat–Walker rate that keeps Newton's local quadratic convergence — then a
  backtracking (Armijo) line search on ½‖g‖². Every MINRES iterate is a descent direction of
  ‖g‖², so an unconverged solve still gives a usable step. The least-squares test stays at
  minres_rtol: a loose one stops at once where g is far from H's range, with a step of almost
  nothing. ``minres_forcing`` is 0 (tight solves) by default: a loose forcing term converged
  fewer searches where we measured it (``find_critical_point``'s docstring);
* :func:`newton_tr_step`: the same MINRES step inside a trust region on the quadratic model
  ½‖g + Hp‖² of ½‖g‖² (Steihaug–Toint truncation of MINRES, whose iterates grow in norm; Liu &
  Roosta, 2022): the radius Δ shrinks when the model promised more than ½‖g‖² fell (gain
  ratio ρ < ¼) and grows when a boundary step earned it (ρ > ¾). A short radius gives an early,
  gradient-like Krylov iterate instead of a cut-down Newton step, and Δ is remembered from step
  to step, where a line search starts every step from the full Newton step again;
* :func:`lm_step`: Levenberg–Marquardt on the gradient system, p = −(H² + μI)⁻¹H·g from a dense
  eigendecomposition, μ adapted by the gain ratio (Nielsen's rule);
* :func:`gradnorm_step`: gradient descent on ½‖g‖² along −H·g, the classic baseline;
* :func:`descent_step`: descent on L where the point is already minimum-like — saddle-free damped
  Newton p = −U(|Λ| + μI)⁻¹Uᵀg from eigh where the dense Hessian fits, otherwise Newton-MR on L:
  MINRES with non-positive-curvature detection, whose direction (when found) is the step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from saddlescope.errors import NonFiniteError
from saddlescope.hessian import dense_hessian_fits
from saddlescope.minres import MinresResult, minres
from saddlescope.objective import Objective
from saddlescope.operators import Operator, symmetric_eigh

__all__ = [
    "SearchOptions",
    "SearchState",
    "descent_step",
    "gradnorm_step",
    "lm_step",
    "newton_mr_step",
    "newton_tr_step",
]


@dataclass(frozen=True)
class SearchOptions:
    """A search's settings, validated (see :func:`~saddlescope.search.find_critical_point`).

    Attributes:
        grad_tol: converged when ‖g‖ ≤ grad_tol.
        minres_rtol: the tightest MINRES tolerance (and its least-squares test's).
        minres_forcing: Newton-MR's loosest MINRES tolerance (0: always minres_rtol).
        minres_maxiter: MINRES's iterations per solve.
        armijo: the sufficient-decrease constant (LM and descent: the least gain ratio).
        min_step: the shortest line-search step before a step counts as failed.
        max_step_norm: the longest step.
        grad_norm0: ‖g‖ at the start, the scale of Newton-MR's forcing term.
    """

    grad_tol: float
    minres_rtol: float
    minres_forcing: float
    minres_maxiter: int
    armijo: float
    min_step: float
    max_step_norm: float
    grad_norm0: float


@dataclass
class SearchState:
    """Where the search is: θ, L, g, ‖g‖², the work so far, and each method's own memory.

    Attributes:
        theta: θ.
        loss: L(θ).
        grad: g = ∇L(θ).
        sq: ‖g‖².
        hvps: Hessian-vector products so far (a dense Hessian counts n).
        grads: gradient evaluations so far.
        alpha: gradnorm's last accepted step length.
        mu: LM's damping (None until its first step).
        nu: LM's damping growth factor.
        mu_descent: the descent step's damping of |Λ| + μI (None until its first step).
        radius: the trust-region step's radius Δ (None until its first step).
    """

    theta: Tensor
    loss: Tensor
    grad: Tensor
    sq: float
    hvps: int = 0
    grads: int = 1
    alpha: float = 1.0  # gradnorm: the last accepted step length
    mu: float | None = None  # lm: the damping
    nu: float = 2.0  # lm: the damping's growth factor
    mu_descent: float | None = None  # descent: the damping of |Λ| + μI
    radius: float | None = None  # newton-tr: the trust region's radius

    def moved(self, trial: Tensor, loss: Tensor, grad: Tensor, sq: float) -> SearchState:
        """This state at a new point (the work counters and method memory carried).

        Args:
            trial: the new θ.
            loss: L there.
            grad: ∇L there.
            sq: ‖∇L‖² there.
        """
        return replace(self, theta=trial, loss=loss, grad=grad, sq=sq)

    def evaluate(self, obj: Objective, trial: Tensor) -> tuple[Tensor, Tensor, float]:
        """(L, ∇L, ‖∇L‖²) at a trial point, counted; an overflow reads as infinite.

        Args:
            obj: the objective.
            trial: the point.
        """
        self.grads += 1
        try:
            loss, g = obj.loss_and_grad(trial)
        except NonFiniteError:
            inf = torch.tensor(math.inf, dtype=obj.dtype, device=obj.device)
            return inf, torch.full_like(trial, math.inf), math.inf
        return loss, g, float(g @ g)


def _capped(alpha: float, p: Tensor, o: SearchOptions) -> float:
    """α shortened so that ‖α·p‖ ≤ max_step_norm."""
    return min(alpha, o.max_step_norm / max(float(torch.linalg.vector_norm(p)), 1e-300))


def _backtrack(
    obj: Objective,
    s: SearchState,
    p: Tensor,
    alpha: float,
    o: SearchOptions,
    accept: Callable[[float, Tensor, float], bool],
) -> tuple[SearchState | None, float]:
    """Halve α (from ``alpha``, capped) until ``accept(α, L, ‖g‖²)`` at θ + αp; None: stalled."""
    alpha = _capped(alpha, p, o)
    while alpha >= o.min_step:
        trial = s.theta + alpha * p
        t_loss, t_g, t_sq = s.evaluate(obj, trial)
        if accept(alpha, t_loss, t_sq):
            return s.moved(trial, t_loss, t_g, t_sq), alpha
        alpha *= 0.5
    return None, alpha


def _armijo_on_grad(
    obj: Objective, s: SearchState, p: Tensor, slope: float, alpha: float, o: SearchOptions
) -> tuple[SearchState | None, float]:
    """Backtrack α until ½‖g(θ + αp)‖² ≤ ½‖g‖² + armijo·α·slope; None: stalled."""
    return _backtrack(
        obj, s, p, alpha, o, lambda a, _, sq: 0.5 * sq <= 0.5 * s.sq + o.armijo * a * slope
    )


def _nielsen(gain: float) -> float:
    """Nielsen's factor for the damping after a step with gain ratio ``gain`` > 0 (≥ 1/3)."""
    return max(1 / 3, 1 - (2 * min(gain, 1.0) - 1) ** 3)


def _newton_solve(
    op: Operator, s: SearchState, o: SearchOptions, max_norm: float | None = None
) -> MinresResult:
    """MINRES(H, −g) to the forcing term η = clip(‖g‖/‖g₀‖, minres_rtol, minres_forcing), counted.

    Its least-squares test stays at minres_rtol; ``max_norm`` is a trust region's radius.
    """
    eta = max(o.minres_rtol, min(o.minres_forcing, math.sqrt(s.sq) / o.grad_norm0))
    res = minres(
        op, -s.grad, rtol=eta, maxiter=o.minres_maxiter, ls_rtol=o.minres_rtol,
        max_norm=max_norm,
    )  # fmt: skip
    s.hvps += res.products
    return res


def newton_mr_step(obj: Objective, s: SearchState, o: SearchOptions) -> SearchState | None:
    """P = MINRES(H, −g) to the forcing term, then an Armijo line search on ½‖g‖² from α = 1.

    Args:
        obj: the objective.
        s: where the search is (its counters and memory are updated).
        o: the search's settings.
    """
    res = _newton_solve(obj.hessian_operator(s.theta), s, o)
    slope = float(res.Ax @ s.grad)  # d/dα ½‖g(θ + αp)‖² at α = 0
    if not slope < 0:
        return None
    return _armijo_on_grad(obj, s, res.x, slope, 1.0, o)[0]


def newton_tr_step(obj: Objective, s: SearchState, o: SearchOptions) -> SearchState | None:
    """P = MINRES(H, −g) truncated at ‖p‖ = Δ, accepted when ρ > armijo; Δ adapted by ρ.

    ρ = (½‖g‖² − ½‖g(θ + p)‖²)/(½‖g‖² − ½‖g + Hp‖²), the fall against the model's. A rejected
    step is solved again at the smaller radius; the step fails (None) once Δ < min_step.

    Args:
        obj: the objective.
        s: where the search is (its counters and memory are updated).
        o: the search's settings.
    """
    op = obj.hessian_operator(s.theta)
    radius = o.max_step_norm if s.radius is None else s.radius
    steepest: tuple[Tensor, Tensor] | None = None  # (Hg, H·Hg), once per step
    while radius >= o.min_step:
        res = _newton_solve(op, s, o, max_norm=radius)
        p, Hp = res.x, res.Ax
        if res.status == "boundary":
            if steepest is None:
                Hg = op @ s.grad
                steepest, s.hvps = (Hg, op @ Hg), s.hvps + 2
            p, Hp = _better_of(s, (p, Hp), _cauchy_point(*steepest, radius))
        predicted = 0.5 * (s.sq - float((s.grad + Hp).pow(2).sum()))
        if not predicted > 0:
            return None
        trial = s.theta + p
        t_loss, t_g, t_sq = s.evaluate(obj, trial)
        rho = 0.5 * (s.sq - t_sq) / predicted
        size = float(torch.linalg.vector_norm(p))
        if rho < 0.25:
            radius = 0.25 * size
        elif rho > 0.75 and size >= 0.99 * radius:
            radius = min(2 * radius, o.max_step_norm)
        if rho > o.armijo:
            s.radius = radius
            return s.moved(trial, t_loss, t_g, t_sq)
    s.radius = radius
    return None


def _cauchy_point(Hg: Tensor, HHg: Tensor, radius: float) -> tuple[Tensor, Tensor]:
    """(p, Hp): the minimiser of ½‖g + Hp‖² along its steepest descent −Hg within ‖p‖ ≤ Δ."""
    gg, hh = float(Hg @ Hg), float(HHg @ HHg)
    tau = min(radius / max(math.sqrt(gg), 1e-300), gg / max(hh, 1e-300))
    return -tau * Hg, -tau * HHg


def _better_of(
    s: SearchState, a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor]
) -> tuple[Tensor, Tensor]:
    """The (p, Hp) of the two with the smaller model ½‖g + Hp‖²."""
    return a if float((s.grad + a[1]).pow(2).sum()) <= float((s.grad + b[1]).pow(2).sum()) else b


def gradnorm_step(obj: Objective, s: SearchState, o: SearchOptions) -> SearchState | None:
    """P = −H·g, an Armijo line search from twice the last accepted step (≤ 1e6).

    Args:
        obj: the objective.
        s: where the search is (its counters and memory are updated).
        o: the search's settings.
    """
    Hg = obj.hessian_operator(s.theta, cache=False) @ s.grad
    s.hvps += 1
    slope = -float(Hg @ Hg)
    if not slope < 0:
        return None
    s.alpha = min(1e6, s.alpha * 2)  # try a little longer than last time
    new, s.alpha = _armijo_on_grad(obj, s, -Hg, slope, s.alpha, o)
    if new is not None:
        new.alpha = s.alpha
    return new


def _eigh(H: Tensor) -> tuple[Tensor, Tensor]:
    lam, U = symmetric_eigh(H)
    assert U is not None
    return lam, U


def lm_step(obj: Objective, s: SearchState, o: SearchOptions) -> SearchState | None:
    """P = −(H² + μI)⁻¹H·g from eigh(H), μ by the gain ratio ρ (Nielsen); None: no gain.

    Args:
        obj: the objective.
        s: where the search is (its counters and memory are updated).
        o: the search's settings.
    """
    lam, U = _eigh(obj.hessian(s.theta))
    s.hvps += obj.num_params
    c = U.mT @ s.grad
    scale = max(float(lam.abs().max()) ** 2, 1e-300)
    if s.mu is None:
        s.mu = 1e-3 * scale
    while True:
        p = -(U @ (lam / (lam**2 + s.mu) * c))
        p = p * _capped(1.0, p, o)
        predicted = s.sq - float((c + lam * (U.mT @ p)).pow(2).sum())  # ‖g‖² − ‖g + Hp‖²
        trial = s.theta + p
        t_loss, t_g, t_sq = s.evaluate(obj, trial)
        rho = (s.sq - t_sq) / max(predicted, 1e-300)
        if rho > o.armijo:
            s.mu *= _nielsen(rho)
            s.nu = 2.0
            return s.moved(trial, t_loss, t_g, t_sq)
        s.mu, s.nu = s.mu * s.nu, s.nu * 2
        if s.mu > 1e30 * max(scale, 1.0):
            return None


def descent_step(obj: Objective, s: SearchState, o: SearchOptions) -> SearchState | None:
    """One step down L: saddle-free damped Newton where H fits densely, else Newton-MR on L.

    Args:
        obj: the objective.
        s: where the search is (its counters and memory are updated).
        o: the search's settings.
    """
    if dense_hessian_fits(obj):
        return _saddle_free_step(obj, s, o)
    return _newton_mr_descent_step(obj, s, o)


def _saddle_free_step(obj: Objective, s: SearchState, o: SearchOptions) -> SearchState | None:
    """P = −U(|Λ| + μI)⁻¹Uᵀg, μ by the gain ratio of L against its quadratic model."""
    lam, U = _eigh(obj.hessian(s.theta))
    s.hvps += obj.num_params
    c = U.mT @ s.grad
    top = max(float(lam.abs().max()), 1e-300)
    if s.mu_descent is None:
        s.mu_descent = 1e-3 * top
    loss = float(s.loss)
    while s.mu_descent <= 1e30 * max(top, 1.0):
        z = -c / (lam.abs() + s.mu_descent)  # the step in eigen-coordinates
        shrink = _capped(1.0, z, o)
        z = z * shrink
        predicted = -float(c @ z) - 0.5 * float((lam * z * z).sum())  # L − model(θ + p)
        trial = s.theta + U @ z
        t_loss, t_g, t_sq = s.evaluate(obj, trial)
        gain = (loss - float(t_loss)) / max(predicted, 1e-300)
        if gain > o.armijo and float(t_loss) <= loss:
            s.mu_descent *= _nielsen(gain)
            return s.moved(trial, t_loss, t_g, t_sq)
        s.mu_descent *= 4
    return None


def _newton_mr_descent_step(obj: Objective, s: SearchState, o: SearchOptions) -> SearchState | None:
    """MINRES(H, −g) with non-positive-curvature detection; Armijo on L along its direction."""
    op = obj.hessian_operator(s.theta)
    res = minres(op, -s.grad, rtol=o.minres_rtol, maxiter=o.minres_maxiter, stop_on_npc=True)
    s.hvps += res.products
    if res.status == "npc" and res.npc is not None:
        p = res.npc if float(res.npc @ s.grad) <= 0 else -res.npc
    else:
        p = res.x
    slope = float(p @ s.grad)
    if not slope < 0:
        p, slope = -s.grad, -s.sq
    loss = float(s.loss)
    return _backtrack(
        obj, s, p, 1.0, o, lambda a, t_loss, _: float(t_loss) <= loss + o.armijo * a * slope
    )[0]
