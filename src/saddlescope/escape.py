"""Leaving saddles: the negative-curvature step and the baselines it is measured against.

At a saddle θ′ with eigenpair (λ < 0, u), L(θ′ + t·u) ≈ L(θ′) + ½λt² < L(θ′) (MISSION §4). The
methods, all from the same start and all counting HVPs and seconds (their options:
:mod:`saddlescope.escape_options`):

* ``"curvature"`` (default): while the gradient is small (‖g‖ ≤ ``stall_grad_norm``), find the
  most negative eigenpair (dense when it fits, else Lanczos); if λ < −threshold, step along ±u
  (sign against the gradient) with a line search on the actual loss that expands from t₀ = 1
  while the loss keeps falling and backtracks until it falls by at least ¼ of ½|λ|t²; otherwise,
  and whenever the gradient is large, take a gradient step;
* ``"perturbed-gd"`` (Jin et al., 2017): gradient descent that adds a uniform perturbation of
  radius ``radius`` when ‖g‖ ≤ ``stall_grad_norm``, at most once every ``wait`` steps;
* ``"saddle-free-newton"`` (Dauphin et al., 2014): θ ← θ − α|H|⁻¹g with |H| = U|Λ|Uᵀ (eigenvalues
  floored at ``damping``·max|λ|), dense when it fits, else in the Lanczos subspace of the k
  extreme eigenpairs with a gradient step in its complement; α by backtracking;
* ``"gd"``: plain gradient descent, the baseline.

Each method is one function that proposes the next θ from the walk so far; :data:`ESCAPE_METHODS`
and the table ``_METHODS`` pick one. Gradient steps use ``lr`` (default 0.5/λ_max at the start,
one Lanczos or dense estimate).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from saddlescope.checks import check_choice, check_finite, check_int, check_positive, check_seed
from saddlescope.errors import HessianTooLargeError, InvalidInputError
from saddlescope.escape_options import (
    CurvatureOptions,
    GDOptions,
    MethodOptions,
    PerturbedGDOptions,
    SaddleFreeNewtonOptions,
)
from saddlescope.escape_results import EscapeResult, EscapeStep
from saddlescope.negative_curvature import (
    curvature_step,
    extreme_eigenpair,
    negative_curvature_direction,
    way_down,
)
from saddlescope.objective import Objective
from saddlescope.spectrum import Spectrum, hessian_spectrum

__all__ = [
    "ESCAPE_METHODS",
    "EscapeResult",
    "EscapeStep",
    "compare_escapes",
    "curvature_step",
    "escape_saddle",
    "extreme_eigenpair",
    "negative_curvature_direction",
    "way_down",
]

Method = Literal["curvature", "perturbed-gd", "saddle-free-newton", "gd"]


# ---------------------------------------------------------------------- one function per method
@dataclass
class _Walk:
    """Where an escape stands, as each method's step function reads it (and what it carries)."""

    obj: Objective
    theta: Tensor
    grad: Tensor
    loss: float
    lr: float
    rtol: float | None
    seed: int
    gen: torch.Generator
    start_low: Spectrum | None = None  # the start's negative end, when step 1 can reuse it
    step: int = 0
    last_perturb: int | None = None

    @property
    def grad_norm(self) -> float:
        return float(self.grad.norm())

    def gradient_step(self, hvps: int = 0) -> tuple[Tensor, str, int]:
        return self.theta - self.lr * self.grad, "gradient", hvps


_Proposal = tuple[Tensor, str, int]  # (the next θ, the action's name, HVPs it spent)


def _gd(walk: _Walk, opts: GDOptions) -> _Proposal:
    return walk.gradient_step()


def _curvature(walk: _Walk, opts: CurvatureOptions) -> _Proposal:
    if walk.grad_norm > opts.stall_grad_norm:
        return walk.gradient_step()
    known = walk.start_low if walk.step == 1 else None
    cand, _, low = way_down(
        walk.obj, walk.theta, walk.grad, walk.loss, walk.rtol, walk.seed + walk.step, known
    )
    used = 0 if known is not None else low.hvps
    return walk.gradient_step(used) if cand is None else (cand, "curvature", used)


def _perturbed_gd(walk: _Walk, opts: PerturbedGDOptions) -> _Proposal:
    waited = walk.last_perturb is None or walk.step - walk.last_perturb >= opts.wait
    if walk.grad_norm > opts.stall_grad_norm or not waited:
        return walk.gradient_step()
    n = walk.obj.num_params
    xi = torch.randn(n, generator=walk.gen, dtype=torch.float64)
    scale = opts.radius * float(torch.rand((), generator=walk.gen, dtype=torch.float64)) ** (1 / n)
    walk.last_perturb = walk.step
    return walk.theta + (scale * xi / xi.norm()).to(walk.theta), "perturb", 0


def _saddle_free_newton(walk: _Walk, opts: SaddleFreeNewtonOptions) -> _Proposal:
    obj, theta = walk.obj, walk.theta
    p, used = _saddle_free_direction(
        obj, theta, walk.grad, opts.damping, opts.k, walk.lr, walk.seed + walk.step
    )
    alpha, f = 1.0, float(obj.losses((theta + p)[None])[0])
    while f > walk.loss and alpha > 1e-8:
        alpha *= 0.5
        f = float(obj.losses((theta + alpha * p)[None])[0])
    return theta + alpha * p, "newton", used


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


class _Method(NamedTuple):
    options: type[MethodOptions]
    step: Callable[[_Walk, Any], _Proposal]
    looks_down_at_start: Callable[[Any, float], bool]  # (options, ‖g₀‖): step 1 wants λ_min


def _never(opts: Any, grad_norm: float) -> bool:
    return False


_METHODS: dict[str, _Method] = {
    "curvature": _Method(
        CurvatureOptions, _curvature, lambda opts, gnorm: gnorm <= opts.stall_grad_norm
    ),
    "perturbed-gd": _Method(PerturbedGDOptions, _perturbed_gd, _never),
    "saddle-free-newton": _Method(SaddleFreeNewtonOptions, _saddle_free_newton, _never),
    "gd": _Method(GDOptions, _gd, _never),
}
ESCAPE_METHODS: tuple[str, ...] = tuple(_METHODS)


# ------------------------------------------------------------------------------ the outer loop
def escape_saddle(
    obj: Objective,
    theta: Tensor,
    *,
    method: Method = "curvature",
    options: Mapping[str, Any] | MethodOptions | None = None,
    target_loss: float | None = None,
    decrease: float | None = None,
    max_steps: int = 1000,
    lr: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
) -> EscapeResult:
    """Leave the saddle at θ by ``method``; stop at ``target_loss`` (or L(θ) − ``decrease``).

    Args:
        obj: the objective.
        theta: the start, next to (or at) a saddle (flat).
        method: one of :data:`ESCAPE_METHODS` (see the module docstring).
        options: the method's own options: its dataclass from
            :mod:`saddlescope.escape_options` or a dict of the same names (e.g.
            ``{"radius": 0.1}`` for ``"perturbed-gd"``); None for the defaults. An option the
            method does not use is an error.
        target_loss: stop at the first step with loss ≤ this.
        decrease: or stop once the loss is this much below L(θ) (not with ``target_loss``).
        max_steps: the most escape steps (outer iterations).
        lr: the gradient step size (default 0.5/max|λ| at the start).
        rtol: the eigenvalue zero band for the eigenvalue estimates (default for the dtype).
        seed: seeds the Lanczos start vectors (``seed`` + step) and the perturbations.

    Returns:
        The whole path (loss, ‖g‖, action, cumulative HVPs and seconds per step).

    Raises:
        InvalidInputError: unknown method, options not of this method, or a bad value.

    >>> from saddlescope import escape_saddle, toy
    >>> obj = toy.worked_example_objective()
    >>> res = escape_saddle(obj, torch.tensor([1e-6, 0.0]), target_loss=1e-8)
    >>> res.reached, res.steps_to_target < 20
    (True, True)
    """
    impl = _METHODS[check_choice("method", method, ESCAPE_METHODS)]
    opts = impl.options.build(method, options)
    check_int("max_steps", max_steps, 0)
    check_seed(seed)
    if target_loss is not None:
        target_loss = check_finite("target_loss", target_loss)
    if target_loss is not None and decrease is not None:
        raise InvalidInputError("give target_loss or decrease, not both")
    theta = obj.check_theta(theta).clone()
    start = time.perf_counter()
    loss_t, g = obj.loss_and_grad(theta)
    walk = _Walk(obj, theta, g, float(loss_t), 0.0, rtol, seed, torch.Generator().manual_seed(seed))
    if decrease is not None:
        target_loss = walk.loss - check_positive("decrease", decrease)
    hvps = _start_lr(walk, lr, impl.looks_down_at_start(opts, walk.grad_norm))
    path = [EscapeStep(0, walk.loss, walk.grad_norm, "start", hvps, time.perf_counter() - start)]
    reached = 0 if target_loss is not None and walk.loss <= target_loss else None
    for step in range(1, max_steps + 1):
        if reached is not None:
            break
        walk.step = step
        walk.theta, action, used = impl.step(walk, opts)
        hvps += used
        loss_t, walk.grad = obj.loss_and_grad(walk.theta)
        walk.loss = float(loss_t)
        seconds = time.perf_counter() - start
        path.append(EscapeStep(step, walk.loss, walk.grad_norm, action, hvps, seconds))
        if target_loss is not None and walk.loss <= target_loss:
            reached = step
    return EscapeResult(method, walk.theta.detach(), tuple(path), target_loss, reached, walk.lr)


def _start_lr(walk: _Walk, lr: float | None, look_down: bool) -> int:
    """Set ``walk.lr`` (given, or 0.5/max|λ| at the start); the HVPs that took.

    With ``look_down`` (step 1 will look for negative curvature here) both ends are computed at
    once and the smallest end is kept for step 1.
    """
    hvps = 0
    if lr is None:
        ends = extreme_eigenpair(
            walk.obj, walk.theta, "both" if look_down else "largest", walk.seed, walk.rtol
        )
        hvps = ends.hvps
        lr = 0.5 / max(ends.scale or abs(ends.max), 1e-12)  # 0.5 / max|λ|
        walk.start_low = ends if look_down else None
    walk.lr = check_positive("lr", lr)
    return hvps


def compare_escapes(
    obj: Objective,
    theta: Tensor,
    *,
    methods: tuple[str, ...] = ESCAPE_METHODS,
    options: Mapping[str, Mapping[str, Any] | MethodOptions] | None = None,
    target_loss: float | None = None,
    decrease: float | None = None,
    max_steps: int = 1000,
    lr: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
) -> tuple[EscapeResult, ...]:
    """:func:`escape_saddle` by each method from the same θ, with the same common settings.

    A block of two Hessian-vector products and a batch of losses are evaluated first, untimed:
    the first batched backward and the first ``vmap`` in a process cost extra (lazy imports),
    which would otherwise be charged to whichever method runs first.

    Args:
        obj: the objective.
        theta: the common start (flat).
        methods: the methods to run, in order.
        options: each method's own options by method name (as :func:`escape_saddle`'s
            ``options``); a method not named takes its defaults; naming a method not in
            ``methods`` is an error.
        target_loss: as :func:`escape_saddle`.
        decrease: as :func:`escape_saddle`.
        max_steps: as :func:`escape_saddle`.
        lr: as :func:`escape_saddle` (None: each method estimates it at the start).
        rtol: as :func:`escape_saddle`.
        seed: as :func:`escape_saddle`.

    Returns:
        One result per method, in the order of ``methods``.
    """
    for m in methods:
        check_choice("method", m, ESCAPE_METHODS)
    options = dict(options or {})
    for m in options:
        if m not in methods:
            raise InvalidInputError(f"options given for {m!r}, which is not among the methods")
    theta = obj.check_theta(theta)
    obj.hessian_operator(theta) @ torch.zeros(obj.num_params, 2, dtype=obj.dtype)
    obj.losses(theta[None])
    common = dict(target_loss=target_loss, decrease=decrease, max_steps=max_steps, lr=lr)
    return tuple(
        escape_saddle(obj, theta, method=m, options=options.get(m), rtol=rtol, seed=seed, **common)  # type: ignore[arg-type]
        for m in methods
    )
