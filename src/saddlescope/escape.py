"""Leaving saddles: the negative-curvature step and the baselines it is measured against.

At a saddle θ′ with eigenpair (λ < 0, u), L(θ′ + t·u) ≈ L(θ′) + ½λt² < L(θ′) (MISSION §4). The
methods, all from the same start and all counting HVPs and seconds:

* ``"curvature"`` (default): while the gradient is small (‖g‖ ≤ ``grad_threshold``), find the most
  negative eigenpair (dense when it fits, else Lanczos); if λ < −tol, step along ±u (sign against
  the gradient) with a line search on the actual loss that expands from t₀ = 1 while the loss
  keeps falling and backtracks until it falls by at least ¼ of ½|λ|t²; otherwise, and whenever
  the gradient is large, take a gradient step;
* ``"perturbed-gd"`` (Jin et al., 2017): gradient descent that adds a uniform perturbation of
  radius ``radius`` when ‖g‖ ≤ ``grad_threshold``, at most once every ``wait`` steps;
* ``"saddle-free-newton"`` (Dauphin et al., 2014): θ ← θ − α|H|⁻¹g with |H| = U|Λ|Uᵀ (eigenvalues
  floored at ``damping``·max|λ|), dense when it fits, else in the Lanczos subspace of the k
  extreme eigenpairs with a gradient step in its complement; α by backtracking;
* ``"gd"``: plain gradient descent, the baseline.

Gradient steps use ``lr`` (default 0.5/λ_max at the start, one Lanczos or dense estimate).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from saddlescope.checks import check_choice, check_positive
from saddlescope.classify import negative_curvature_direction as _negative_direction
from saddlescope.errors import HessianTooLargeError, InvalidInputError, NonFiniteError
from saddlescope.objective import Objective
from saddlescope.spectrum import Spectrum, hessian_spectrum

__all__ = [
    "ESCAPE_METHODS",
    "EscapeEvent",
    "EscapeResult",
    "EscapeStep",
    "SaddleEscape",
    "compare_escapes",
    "curvature_step",
    "escape_saddle",
]

ESCAPE_METHODS = ("curvature", "perturbed-gd", "saddle-free-newton", "gd")
Method = Literal["curvature", "perturbed-gd", "saddle-free-newton", "gd"]


@dataclass(frozen=True)
class EscapeStep:
    """The state after one step: loss, ‖g‖, what was done, cumulative HVPs and seconds."""

    step: int
    loss: float
    grad_norm: float
    action: str  # "start", "curvature", "gradient", "perturb", "newton"
    hvps: int
    seconds: float


@dataclass(frozen=True, eq=False)
class EscapeResult:
    """The path of an escape. ``steps_to_target`` is the first step with loss ≤ target_loss."""

    method: str
    theta: Tensor
    path: tuple[EscapeStep, ...]
    target_loss: float | None
    steps_to_target: int | None
    lr: float

    @property
    def loss(self) -> float:
        return self.path[-1].loss

    @property
    def reached(self) -> bool:
        return self.steps_to_target is not None

    @property
    def hvps(self) -> int:
        return self.path[-1].hvps

    @property
    def seconds(self) -> float:
        return self.path[-1].seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "reached": self.reached,
            "steps_to_target": self.steps_to_target,
            "target_loss": self.target_loss,
            "loss": self.loss,
            "hvps": self.hvps,
            "seconds": self.seconds,
            "lr": self.lr,
            "theta": self.theta.tolist(),
            "path": [s.__dict__ for s in self.path],
        }

    def __str__(self) -> str:
        reach = (
            f"reached loss ≤ {self.target_loss:.3g} in {self.steps_to_target} steps"
            if self.reached
            else f"did not reach {self.target_loss:.3g} in {len(self.path) - 1} steps"
            if self.target_loss is not None
            else f"{len(self.path) - 1} steps"
        )
        return (
            f"{self.method}: {reach}; loss {self.path[0].loss:.6g} → {self.loss:.6g}, "
            f"{self.hvps} HVPs, {self.seconds:.3g} s"
        )


def _extreme(
    obj: Objective, theta: Tensor, which: str, seed: int, rtol: float | None = None
) -> Spectrum:
    """The most negative or most positive eigenpair, dense when it fits (cheap for small n)."""
    try:
        obj.check_dense_fits()
        method = "dense" if obj.num_params <= 2048 else "lanczos"
    except HessianTooLargeError:
        method = "lanczos"
    return hessian_spectrum(obj, theta, k=1, which=which, method=method, rtol=rtol, seed=seed)  # type: ignore[arg-type]


def _way_down(
    obj: Objective,
    theta: Tensor,
    g: Tensor,
    loss: float,
    rtol: float | None,
    seed: int,
    low: Spectrum | None = None,
) -> tuple[Tensor | None, float, Spectrum]:
    """(θ after the negative-curvature step or None, its loss, the smallest-end spectrum).

    ``low``: a spectrum at θ already holding its most negative pair first (not recomputed).
    """
    if low is None:
        low = _extreme(obj, theta, "smallest", seed, rtol)
    u, curvature = _negative_direction(low, g)
    if u is None or curvature is None:
        return None, loss, low
    new, f, _ = curvature_step(obj, theta, u, curvature, loss)
    return (new, f, low) if f < loss else (None, loss, low)


def curvature_step(
    obj: Objective,
    theta: Tensor,
    direction: Tensor,
    curvature: float,
    loss: float,
    *,
    max_expand: int = 30,
    min_step: float = 1e-10,
) -> tuple[Tensor, float, int]:
    """Line search along a negative-curvature direction u (λ = ``curvature`` < 0).

    Starts at t = 1, doubles t while the loss keeps falling, halves it until the actual decrease
    is at least ¼·½|λ|t². Returns (new θ, its loss, loss evaluations); θ unchanged if no step
    passes.
    """
    evals = 0

    def at(t: float) -> float:
        nonlocal evals
        evals += 1
        try:
            return float(obj.losses((theta + t * direction)[None])[0])
        except NonFiniteError:  # overshot into overflow: treat as no decrease
            return math.inf

    t, f = 1.0, at(1.0)
    if f < loss:
        for _ in range(max_expand):
            f2 = at(2 * t)
            if not f2 < f:
                break
            t, f = 2 * t, f2
        return theta + t * direction, f, evals
    while t >= min_step:
        if loss - f >= 0.125 * abs(curvature) * t * t:
            return theta + t * direction, f, evals
        t *= 0.5
        f = at(t)
    return theta, loss, evals


def escape_saddle(
    obj: Objective,
    theta: Tensor,
    *,
    method: Method = "curvature",
    target_loss: float | None = None,
    decrease: float | None = None,
    max_steps: int = 1000,
    lr: float | None = None,
    grad_threshold: float = 1e-3,
    radius: float = 1e-2,
    wait: int = 10,
    damping: float = 1e-3,
    k: int = 10,
    rtol: float | None = None,
    seed: int = 0,
) -> EscapeResult:
    """Leave the saddle at θ by ``method``; stop at ``target_loss`` (or L(θ) − ``decrease``).

    Returns the whole path (loss, ‖g‖, action, cumulative HVPs and seconds per step).

    >>> from saddlescope import escape_saddle, toy
    >>> obj = toy.worked_example_objective()
    >>> res = escape_saddle(obj, torch.tensor([1e-6, 0.0]), target_loss=1e-8)
    >>> res.reached, res.steps_to_target < 20
    (True, True)
    """
    check_choice("method", method, ESCAPE_METHODS)
    check_positive("grad_threshold", grad_threshold)
    check_positive("radius", radius)
    check_positive("damping", damping)
    if not isinstance(max_steps, int) or max_steps < 0:
        raise InvalidInputError(f"max_steps must be a non-negative integer, got {max_steps!r}")
    if not isinstance(wait, int) or wait < 1:
        raise InvalidInputError(f"wait must be a positive integer, got {wait!r}")
    if target_loss is not None and decrease is not None:
        raise InvalidInputError("give target_loss or decrease, not both")
    theta = obj.check_theta(theta).clone()
    start = time.perf_counter()
    loss_t, g = obj.loss_and_grad(theta)
    loss = float(loss_t)
    if decrease is not None:
        target_loss = loss - check_positive("decrease", decrease)
    hvps = 0
    start_low = None  # the start's spectrum, when step 1 can reuse it for its negative end
    if lr is None:
        # where step 1 will look for negative curvature too: one computation for both ends
        flat = method == "curvature" and float(g.norm()) <= grad_threshold
        ends = _extreme(obj, theta, "both" if flat else "largest", seed, rtol)
        hvps += ends.hvps
        lr = 0.5 / max(ends.scale or abs(ends.max), 1e-12)  # 0.5 / max|λ|
        start_low = ends if flat else None
    check_positive("lr", lr)
    gen = torch.Generator().manual_seed(seed)
    path = [EscapeStep(0, loss, float(g.norm()), "start", hvps, time.perf_counter() - start)]
    reached = 0 if target_loss is not None and loss <= target_loss else None
    last_perturb = -wait
    for step in range(1, max_steps + 1):
        if reached is not None:
            break
        gnorm = float(g.norm())
        action = "gradient"
        new = theta - lr * g
        if method == "curvature" and gnorm <= grad_threshold:
            known = start_low if step == 1 else None
            cand, _, low = _way_down(obj, theta, g, loss, rtol, seed + step, known)
            hvps += 0 if known is not None else low.hvps
            if cand is not None:
                new, action = cand, "curvature"
        elif method == "perturbed-gd" and gnorm <= grad_threshold and step - last_perturb >= wait:
            xi = torch.randn(obj.num_params, generator=gen, dtype=torch.float64)
            scale = radius * float(torch.rand((), generator=gen, dtype=torch.float64)) ** (
                1 / obj.num_params
            )
            new = theta + (scale * xi / xi.norm()).to(theta)
            action, last_perturb = "perturb", step
        elif method == "saddle-free-newton":
            p, used = _saddle_free_direction(obj, theta, g, damping, k, lr, seed + step)
            hvps += used
            alpha, f = 1.0, float(obj.losses((theta + p)[None])[0])
            while f > loss and alpha > 1e-8:
                alpha *= 0.5
                f = float(obj.losses((theta + alpha * p)[None])[0])
            new, action = theta + alpha * p, "newton"
        theta = new
        loss_t, g = obj.loss_and_grad(theta)
        loss = float(loss_t)
        path.append(
            EscapeStep(step, loss, float(g.norm()), action, hvps, time.perf_counter() - start)
        )
        if target_loss is not None and loss <= target_loss:
            reached = step
    return EscapeResult(method, theta.detach(), tuple(path), target_loss, reached, lr)


def _saddle_free_direction(
    obj: Objective, theta: Tensor, g: Tensor, damping: float, k: int, lr: float, seed: int
) -> tuple[Tensor, int]:
    """−|H|⁻¹g: dense when it fits, else on the span of k extreme eigenpairs (+ −lr·g off it)."""
    try:
        obj.check_dense_fits()
        spec = hessian_spectrum(obj, theta, method="dense")
    except HessianTooLargeError:
        spec = hessian_spectrum(obj, theta, k=k, which="both", method="lanczos", seed=seed)
    lam = spec.eigenvalues.to(theta)
    V = spec.eigenvectors
    assert V is not None
    floor = damping * max(float(lam.abs().max()), 1e-300)
    coef = V.mT @ g
    p = -(V @ (coef / lam.abs().clamp_min(floor)))
    if not spec.complete:
        p = p - lr * (g - V @ coef)
    return p, spec.hvps


# ------------------------------------------------------------------------------ the optimizer
@dataclass(frozen=True)
class EscapeEvent:
    """What :class:`SaddleEscape` did when it found training stalled."""

    step: int
    loss_before: float
    loss_after: float
    curvature: float  # the most negative eigenvalue found
    action: str  # "escaped" or "no-negative-curvature"
    hvps: int


class SaddleEscape(torch.optim.Optimizer):
    """A ``torch.optim`` wrapper that steps out of saddles when training stalls.

    Every ``step`` runs the base optimizer, then — only if the gradient norm (read from
    ``p.grad``) is ≤ ``grad_tol`` and the loss varied by at most ``loss_tol``·max(1, |L|) over the
    last ``window`` steps — checks the most negative Hessian eigenvalue of the full objective
    (dense when small, else Lanczos). If it is below −tol the parameters take the
    negative-curvature step of :func:`curvature_step` (and the base optimizer's state for them is
    reset, since its momenta point the old way); either way the event is logged in
    :attr:`events`. When training is not stalled the only extra work is reading the loss the
    closure returned (the gradient norm is computed only once the loss window is flat, or every
    step when ``step`` gets no closure).

    The objective is built from ``model``, ``loss_fn`` and ``data`` as :class:`Objective` does;
    the base optimizer must optimise the model's trainable parameters.

    >>> from saddlescope import toy
    >>> model, loss_fn, data = toy.worked_example(1e-4, 0.0)
    >>> opt = SaddleEscape(torch.optim.SGD(model.parameters(), lr=0.1), model, loss_fn, data,
    ...                    window=3)
    >>> for _ in range(10):
    ...     def closure():
    ...         opt.zero_grad(); loss = loss_fn(model(data[0]), data[1]); loss.backward()
    ...         return loss
    ...     _ = opt.step(closure)
    >>> opt.events[0].action, loss_fn(model(data[0]), data[1]).item() < 0.5
    ('escaped', True)
    """

    def __init__(
        self,
        base: torch.optim.Optimizer,
        model: torch.nn.Module,
        loss_fn: Any,
        data: Any,
        *,
        grad_tol: float = 1e-3,
        loss_tol: float = 1e-4,
        window: int = 20,
        rtol: float | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(base, torch.optim.Optimizer):
            raise InvalidInputError("base must be a torch.optim.Optimizer")
        check_positive("grad_tol", grad_tol)
        check_positive("loss_tol", loss_tol, allow_zero=True)
        if not isinstance(window, int) or window < 1:
            raise InvalidInputError(f"window must be a positive integer, got {window!r}")
        self.base = base
        self.model, self.loss_fn, self.data = model, loss_fn, data
        self.objective = Objective(model, loss_fn, data)
        live = dict(model.named_parameters())
        self._params = [live[n] for n in self.objective.param_names]
        ours = {id(p) for g in base.param_groups for p in g["params"]}
        if not all(id(p) in ours for p in self._params):
            raise InvalidInputError(
                "the base optimizer must optimise every trainable parameter of the model"
            )
        self.grad_tol, self.loss_tol, self.window, self.rtol = grad_tol, loss_tol, window, rtol
        self.seed = seed
        self.events: list[EscapeEvent] = []
        self._losses: deque[float] = deque(maxlen=window)
        self._steps = 0
        self.defaults = base.defaults
        self._optimizer_step_pre_hooks = {}  # type: ignore[assignment]
        self._optimizer_step_post_hooks = {}  # type: ignore[assignment]

    # Delegate the optimizer's state to the base, so schedulers and checkpoints see one optimizer.
    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        return self.base.param_groups

    @property  # type: ignore[override]
    def state(self) -> Any:
        return self.base.state

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base.load_state_dict(state_dict)

    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = self.base.step(closure) if closure is not None else self.base.step()
        self._steps += 1
        if loss is not None:
            self._losses.append(float(loss.detach() if isinstance(loss, Tensor) else loss))
            if not self._stalled():  # the cheap test first: a flat loss window
                return loss
        if self._grad_norm() <= self.grad_tol:
            self._escape()
        return loss

    def _grad_norm(self) -> float:
        grads = [p.grad for p in self._params if p.grad is not None]
        if not grads:
            return math.inf
        return float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))

    def _stalled(self) -> bool:
        if len(self._losses) < self.window:
            return False
        spread = max(self._losses) - min(self._losses)
        return spread <= self.loss_tol * max(1.0, abs(self._losses[-1]))

    @torch.no_grad()
    def _escape(self) -> None:
        # A fresh objective: frozen parameters and buffers as they are now, not at construction.
        obj = Objective(self.model, self.loss_fn, self.data)
        theta = torch.cat([p.detach().reshape(-1) for p in self._params]).to(obj.dtype)
        loss, g = obj.loss_and_grad(theta)
        new, after, low = _way_down(obj, theta, g, float(loss), self.rtol, self.seed + self._steps)
        action = "no-negative-curvature"
        if new is not None:
            for p, chunk in zip(self._params, obj.unflatten(new).values()):
                p.copy_(chunk.to(p.dtype))
                self.base.state.pop(p, None)  # momenta from before the jump point the wrong way
            action = "escaped"
        self.events.append(EscapeEvent(self._steps, float(loss), after, low.min, action, low.hvps))
        self._losses.clear()


def compare_escapes(
    obj: Objective,
    theta: Tensor,
    *,
    methods: tuple[str, ...] = ESCAPE_METHODS,
    **options: Any,
) -> tuple[EscapeResult, ...]:
    """:func:`escape_saddle` by each method from the same θ, with the same options.

    A block of two Hessian-vector products and a batch of losses are evaluated first, untimed:
    the first batched backward and the first ``vmap`` in a process cost about half a second
    each (lazy imports), which would otherwise be charged to whichever method runs first.
    """
    for m in methods:
        check_choice("method", m, ESCAPE_METHODS)
    theta = obj.check_theta(theta)
    obj.hessian_operator(theta) @ torch.zeros(obj.num_params, 2, dtype=obj.dtype)
    obj.losses(theta[None])
    return tuple(escape_saddle(obj, theta, method=m, **options) for m in methods)  # type: ignore[arg-type]
