"""Finding critical points: zeros of ∇L of any kind (minimum, saddle, maximum).

Critical points are the zeros of g = ∇L, i.e. the minima of ½‖g‖², whose gradient is H·g. Each
method is one step function, picked from :data:`METHODS`:

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
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import torch
from scipy.sparse.linalg import minres
from torch import Tensor

from saddlescope.checks import check_choice, check_int, check_positive
from saddlescope.errors import InvalidInputError, NonFiniteError
from saddlescope.objective import Objective
from saddlescope.tolerance import FLAT_TOL, MINRES_RTOL, default_grad_tol

__all__ = [
    "METHODS",
    "CriticalPointSearch",
    "SearchStep",
    "find_critical_point",
    "gradient_flatness",
]

SearchMethod = Literal["newton-mr", "lm", "gradnorm"]
DEFAULT_MAX_STEPS = {"newton-mr": 200, "lm": 200, "gradnorm": 20_000}
_MINRES_MAXITER = 500  # MINRES iterations by default: min(n, this)


@dataclass(frozen=True)
class SearchStep:
    """One iteration of a critical-point search.

    ``step`` is its number (0: the start), ``loss`` and ``grad_norm`` where it ended,
    ``step_size`` the ‖Δθ‖ it took, ``hvps`` the products used so far (cumulative).
    """

    step: int
    loss: float
    grad_norm: float
    step_size: float
    hvps: int

    def to_dict(self) -> dict[str, Any]:
        """The five fields by name."""
        return dict(self.__dict__)

    def __str__(self) -> str:
        return (
            f"step {self.step}: loss {self.loss:.6g}, ‖g‖ {self.grad_norm:.3g}, "
            f"‖Δθ‖ {self.step_size:.3g}, {self.hvps} HVPs"
        )


@dataclass(frozen=True, eq=False)
class CriticalPointSearch:
    """Where a critical-point search ended, and how.

    ``status`` is "converged" (‖g‖ ≤ grad_tol), "gradient-flat" (stalled with g nearly in the
    null space of H: ``flatness`` ≥ flat_tol), "stalled" (no line-search step made progress) or
    "max-steps". Only "converged" is a critical point (``converged``). ``theta``, ``loss``,
    ``grad_norm`` describe where it ended, ``grad_tol`` what it aimed for, ``method`` how;
    ``steps``, ``hvps``, ``grads`` and ``seconds`` what it cost; ``history`` one
    :class:`SearchStep` per iteration.
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
        """True when the search stalled at a gradient-flat point."""
        return self.status == "gradient-flat"

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain Python values."""
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
            "history": [s.to_dict() for s in self.history],
        }

    def __str__(self) -> str:
        flat = "" if self.flatness is None else f", flatness {self.flatness:.3g}"
        return (
            f"{self.method}: {self.status} after {self.steps} steps — loss {self.loss:.6g}, "
            f"‖g‖ {self.grad_norm:.3g} (grad_tol {self.grad_tol:g}){flat}; "
            f"{self.hvps} HVPs, {self.grads} gradients, {self.seconds:.3g} s"
        )


def _minres(
    obj: Objective, theta: Tensor, g: Tensor, rtol: float, maxiter: int
) -> tuple[Tensor, Tensor, int]:
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
    (near-)null space — the signature of a gradient-flat point.

    Args:
        obj: the objective.
        theta: the parameters.
        minres_rtol: MINRES's relative residual.
        minres_maxiter: MINRES's iterations (default min(n, 500)).
        grad: ∇L(θ) when already known, to skip recomputing it.
    """
    theta = obj.check_theta(theta)
    check_positive("minres_rtol", minres_rtol)
    g = obj.grad(theta) if grad is None else obj.check_theta(grad, "grad")
    gn = float(torch.linalg.vector_norm(g))
    if gn == 0:
        return 0.0, 0
    maxiter = (
        min(obj.num_params, _MINRES_MAXITER)
        if minres_maxiter is None
        else check_int("minres_maxiter", minres_maxiter, 1)
    )
    _, Hp, used = _minres(obj, theta, g, minres_rtol, maxiter)
    return float(torch.linalg.vector_norm(Hp + g)) / gn, used


@dataclass(frozen=True)
class _Options:
    """The search's settings, validated."""

    grad_tol: float
    minres_rtol: float
    minres_maxiter: int
    armijo: float
    min_step: float
    max_step_norm: float


@dataclass
class _State:
    """Where the search is: θ, L, g, ‖g‖², the work so far, and each method's own memory."""

    theta: Tensor
    loss: Tensor
    grad: Tensor
    sq: float
    hvps: int = 0
    grads: int = 1
    alpha: float = 1.0  # gradnorm: the last accepted step length
    mu: float | None = None  # lm: the damping
    nu: float = 2.0  # lm: the damping's growth factor

    def moved(self, trial: Tensor, loss: Tensor, grad: Tensor, sq: float) -> _State:
        """This state at a new point (the work counters and method memory carried)."""
        return replace(self, theta=trial, loss=loss, grad=grad, sq=sq)


def _loss_and_grad_or_inf(obj: Objective, theta: Tensor) -> tuple[Tensor, Tensor]:
    """(L, ∇L) at a trial point; an overflow there reads as an infinite gradient (step rejected)."""
    try:
        return obj.loss_and_grad(theta)
    except NonFiniteError:
        inf = torch.tensor(math.inf, dtype=obj.dtype, device=obj.device)
        return inf, torch.full_like(theta, math.inf)


def _armijo(
    obj: Objective, s: _State, p: Tensor, slope: float, alpha: float, o: _Options
) -> tuple[_State | None, float]:
    """Backtrack α from ``alpha`` until ½‖g(θ + αp)‖² ≤ ½‖g‖² + armijo·α·slope; None: stalled."""
    alpha = min(alpha, o.max_step_norm / max(float(torch.linalg.vector_norm(p)), 1e-300))
    while alpha >= o.min_step:
        trial = s.theta + alpha * p
        t_loss, t_g = _loss_and_grad_or_inf(obj, trial)
        s.grads += 1
        t_sq = float(t_g @ t_g)
        if 0.5 * t_sq <= 0.5 * s.sq + o.armijo * alpha * slope:
            return s.moved(trial, t_loss, t_g, t_sq), alpha
        alpha *= 0.5
    return None, alpha


def _newton_mr_step(obj: Objective, s: _State, o: _Options) -> _State | None:
    """P = MINRES(H, −g), then an Armijo line search on ½‖g‖² from α = 1."""
    p, Hp, used = _minres(obj, s.theta, s.grad, o.minres_rtol, o.minres_maxiter)
    s.hvps += used
    slope = float(Hp @ s.grad)  # d/dα ½‖g(θ + αp)‖² at α = 0
    if not slope < 0:
        return None
    return _armijo(obj, s, p, slope, 1.0, o)[0]


def _gradnorm_step(obj: Objective, s: _State, o: _Options) -> _State | None:
    """P = −H·g, an Armijo line search from twice the last accepted step (≤ 1e6)."""
    Hg = obj.hessian_operator(s.theta, cache=False) @ s.grad
    s.hvps += 1
    slope = -float(Hg @ Hg)
    if not slope < 0:
        return None
    s.alpha = min(1e6, s.alpha * 2)  # try a little longer than last time
    new, s.alpha = _armijo(obj, s, -Hg, slope, s.alpha, o)
    if new is not None:
        new.alpha = s.alpha
    return new


def _lm_step(obj: Objective, s: _State, o: _Options) -> _State | None:
    """P = −(H² + μI)⁻¹H·g from eigh(H), μ by the gain ratio ρ (Nielsen); None: no gain."""
    lam, U = torch.linalg.eigh(obj.hessian(s.theta))
    s.hvps += obj.num_params
    c = U.mT @ s.grad
    scale = max(float(lam.abs().max()) ** 2, 1e-300)
    if s.mu is None:
        s.mu = 1e-3 * scale
    while True:
        p = -(U @ (lam / (lam**2 + s.mu) * c))
        p = p * min(1.0, o.max_step_norm / max(float(torch.linalg.vector_norm(p)), 1e-300))
        predicted = s.sq - float((c + lam * (U.mT @ p)).pow(2).sum())  # ‖g‖² − ‖g + Hp‖²
        trial = s.theta + p
        t_loss, t_g = _loss_and_grad_or_inf(obj, trial)
        s.grads += 1
        t_sq = float(t_g @ t_g)
        rho = (s.sq - t_sq) / max(predicted, 1e-300)
        if rho > o.armijo:
            s.mu *= max(1 / 3, 1 - (2 * min(rho, 1.0) - 1) ** 3)
            s.nu = 2.0
            return s.moved(trial, t_loss, t_g, t_sq)
        s.mu, s.nu = s.mu * s.nu, s.nu * 2
        if s.mu > 1e30 * max(scale, 1.0):
            return None


StepFn = Callable[[Objective, _State, _Options], "_State | None"]


def _iterate(
    obj: Objective,
    s: _State,
    o: _Options,
    step: StepFn,
    max_steps: int,
    history: list[SearchStep],
) -> tuple[_State, str, int]:
    """Steps until converged, stalled (a step returned None) or ``max_steps``."""
    steps = 0
    for steps in range(1, max_steps + 1):
        if math.sqrt(s.sq) <= o.grad_tol:
            return s, "converged", steps - 1
        new = step(obj, s, o)
        if new is None:
            return s, "stalled", steps - 1
        size = float(torch.linalg.vector_norm(new.theta - s.theta))
        s = new
        history.append(SearchStep(steps, float(s.loss), math.sqrt(s.sq), size, s.hvps))
    return s, "converged" if math.sqrt(s.sq) <= o.grad_tol else "max-steps", steps


def _options(
    obj: Objective,
    theta: Tensor,
    grad_tol: float | None,
    minres_rtol: float,
    minres_maxiter: int | None,
    armijo: float,
    min_step: float,
    max_step_norm: float | None,
) -> _Options:
    """The settings validated, with their defaults filled in."""
    if not 0 < check_positive("armijo", armijo) < 0.5:
        raise InvalidInputError(f"armijo must be in (0, 0.5), got {armijo}")
    if max_step_norm is None:
        max_step_norm = 10 * max(1.0, float(torch.linalg.vector_norm(theta)))
    if minres_maxiter is None:
        minres_maxiter = min(obj.num_params, _MINRES_MAXITER)
    return _Options(
        grad_tol=check_positive(
            "grad_tol", default_grad_tol(obj.dtype) if grad_tol is None else grad_tol
        ),
        minres_rtol=check_positive("minres_rtol", minres_rtol),
        minres_maxiter=check_int("minres_maxiter", minres_maxiter, 1),
        armijo=armijo,
        min_step=check_positive("min_step", min_step),
        max_step_norm=check_positive("max_step_norm", max_step_norm),
    )


METHODS: dict[str, StepFn] = {
    "newton-mr": _newton_mr_step,
    "lm": _lm_step,
    "gradnorm": _gradnorm_step,
}


def find_critical_point(
    obj: Objective,
    theta0: Tensor,
    *,
    method: SearchMethod = "newton-mr",
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

    Stops when ‖g‖ ≤ ``grad_tol``, when a step cannot lower ‖g‖² ("stalled"), or after
    ``max_steps``. A non-converged search whose flatness ‖H·p + g‖/‖g‖ is ≥ ``flat_tol`` is
    reported as gradient-flat.

    Args:
        obj: the objective.
        theta0: where to start.
        method: "newton-mr", "lm" or "gradnorm" (module docstring).
        grad_tol: converged when ‖g‖ ≤ grad_tol (default by dtype, see
            :mod:`saddlescope.tolerance`).
        max_steps: the most iterations (default 200 for Newton-MR and LM, 20,000 for
            gradnorm).
        minres_rtol: MINRES's relative residual (Newton-MR and the flatness check).
        minres_maxiter: MINRES's iterations (default min(n, 500)).
        flat_tol: the flatness from which a stalled search is gradient-flat.
        armijo: the sufficient-decrease constant of the line search (LM: the least gain
            ratio), in (0, 0.5).
        min_step: the shortest line-search step before the search counts as stalled.
        max_step_norm: the longest step (default 10·max(1, ‖θ0‖)): where H is singular and g
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
    steps_cap = DEFAULT_MAX_STEPS[method] if max_steps is None else max_steps
    check_int("max_steps", steps_cap, 0)
    start = time.perf_counter()
    theta = obj.check_theta(theta0).clone()
    obj.layout.require_finite_vector(theta)
    o = _options(obj, theta, grad_tol, minres_rtol, minres_maxiter, armijo, min_step, max_step_norm)
    check_positive("flat_tol", flat_tol)
    loss, g = obj.loss_and_grad(theta)
    s = _State(theta, loss, g, float(g @ g))
    history = [SearchStep(0, float(loss), math.sqrt(s.sq), 0.0, 0)]
    s, status, steps = _iterate(obj, s, o, METHODS[method], steps_cap, history)
    flatness = None
    if status != "converged":
        flatness, used = gradient_flatness(
            obj, s.theta, minres_rtol=o.minres_rtol, minres_maxiter=o.minres_maxiter, grad=s.grad
        )
        s.hvps += used
        if flatness >= flat_tol:
            status = "gradient-flat"
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
    )
