"""The way down from a saddle: the negative-curvature direction and the step along it.

At a saddle θ′ with eigenpair (λ < 0, u), L(θ′ + t·u) ≈ L(θ′) + ½λt² < L(θ′) (MISSION §4).
:func:`negative_curvature_direction` signs u against the gradient; :func:`curvature_step` takes
the step with a line search on the actual loss; :func:`way_down` does both from θ, as the
``"curvature"`` escape method and :class:`~saddlescope.saddle_escape.SaddleEscape` use it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from saddlescope.errors import HessianTooLargeError, NonFiniteError
from saddlescope.objective import Objective
from saddlescope.spectrum import Spectrum, hessian_spectrum

__all__ = [
    "curvature_step",
    "downhill",
    "extreme_eigenpair",
    "negative_curvature_direction",
    "way_down",
]


def negative_curvature_direction(
    spectrum: Spectrum, grad: Tensor
) -> tuple[Tensor | None, float | None]:
    """The unit eigenvector of the most negative eigenvalue, if it is below −threshold.

    Signed so that gᵀu ≤ 0 (the step goes against the gradient too); at gᵀu = 0 the sign is
    fixed by making the entry of largest magnitude positive, so the result is deterministic.

    Args:
        spectrum: a spectrum holding the most negative eigenpair first (ascending eigenvalues,
            with eigenvectors), e.g. ``which="smallest"`` or a complete one.
        grad: the gradient at the same θ (flat).

    Returns:
        (u, λ_min), or (None, None) when there are no eigenvectors or no eigenvalue is below
        −``spectrum.threshold``.

    >>> from saddlescope import hessian_spectrum, toy
    >>> obj = toy.worked_example_objective()
    >>> spec = hessian_spectrum(obj, torch.zeros(2, dtype=torch.float64))
    >>> u, lam = negative_curvature_direction(spec, torch.zeros(2, dtype=torch.float64))
    >>> [round(x, 4) for x in u.tolist()], lam
    ([0.7071, 0.7071], -2.0)
    """
    if spectrum.eigenvectors is None or spectrum.min >= -spectrum.threshold:
        return None, None
    return downhill(spectrum.eigenvectors[:, 0], grad), spectrum.min


def downhill(u: Tensor, grad: Tensor) -> Tensor:
    """``u`` normalised and signed so that gᵀu ≤ 0; at gᵀu = 0, its largest entry positive.

    Args:
        u: a direction (flat).
        grad: the gradient there (any dtype: a half-precision model's is cast to u's).
    """
    u = u / torch.linalg.vector_norm(u)
    dot = float(grad.to(u.dtype) @ u)
    if dot > 0 or (dot == 0 and float(u[u.abs().argmax()]) < 0):
        u = -u
    return u


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
    is at least ¼·½|λ|t² (the quadratic model's decrease ½|λ|t², a quarter of it).

    Args:
        obj: the objective.
        theta: the point to step from (flat).
        direction: the unit direction u to step along (flat, same size as θ).
        curvature: the curvature λ = uᵀHu < 0 along u.
        loss: L(θ), known already.
        max_expand: the most doublings of t while the loss keeps falling.
        min_step: the smallest t tried while backtracking.

    Returns:
        (new θ, its loss, loss evaluations); θ and ``loss`` unchanged if no step passes.
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


def extreme_eigenpair(
    obj: Objective, theta: Tensor, which: str, seed: int, rtol: float | None = None
) -> Spectrum:
    """The extreme eigenpair(s) at one or both ends, dense when it fits (cheap for small n).

    Args:
        obj: the objective.
        theta: where (flat).
        which: "smallest", "largest" or "both".
        seed: the Lanczos start vector's seed.
        rtol: the eigenvalue zero band (default for the dtype when None).

    Returns:
        A spectrum with k = 1 eigenpair per end asked for.
    """
    try:
        obj.check_dense_fits()
        method = "dense" if obj.num_params <= 2048 else "lanczos"
    except HessianTooLargeError:
        method = "lanczos"
    return hessian_spectrum(obj, theta, k=1, which=which, method=method, rtol=rtol, seed=seed)  # type: ignore[arg-type]


def way_down(
    obj: Objective,
    theta: Tensor,
    grad: Tensor,
    loss: float,
    rtol: float | None,
    seed: int,
    low: Spectrum | None = None,
) -> tuple[Tensor | None, float, Spectrum]:
    """The negative-curvature step from θ, if there is one that lowers the loss.

    Args:
        obj: the objective.
        theta: where (flat).
        grad: ∇L(θ).
        loss: L(θ).
        rtol: the eigenvalue zero band (default for the dtype when None).
        seed: the Lanczos start vector's seed.
        low: a spectrum at θ already holding its most negative pair first (not recomputed).

    Returns:
        (θ after the step or None, its loss (``loss`` when None), the smallest-end spectrum).
    """
    if low is None:
        low = extreme_eigenpair(obj, theta, "smallest", seed, rtol)
    u, curvature = negative_curvature_direction(low, grad)
    if u is None or curvature is None:
        return None, loss, low
    new, f, _ = curvature_step(obj, theta, u, curvature, loss)
    return (new, f, low) if f < loss else (None, loss, low)
