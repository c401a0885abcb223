"""Lanczos in torch: the tridiagonalisation, and extreme eigenpairs to an achieved accuracy.

For a symmetric operator H (any :class:`~saddlescope.operators.Operator`; on the GPU too), m steps
of Lanczos from a unit vector q₁ build an orthonormal basis Q = [q₁ … q_m] of the Krylov space
and the tridiagonal T = QᵀHQ (diagonal α, off-diagonal β):

    H q_j = β_{j−1} q_{j−1} + α_j q_j + β_j q_{j+1}.

Every new vector is re-orthogonalised against all previous ones (a second pass when the first
removes much of it: "twice is enough"), so the basis stays orthonormal in floating point and no
spurious copies of eigenvalues appear. One kernel, :func:`lanczos_tridiag`, runs one start
vector or a block of independent ones together (one block product per step): :func:`lanczos`
uses one for extreme eigenpairs, :func:`~saddlescope.slq.slq` many for quadrature.

A Ritz pair (θ_i, y_i = Q s_i) of T has the residual r_i = ‖H y_i − θ_i y_i‖ = β_m·|s_{m,i}|,
known without another product, and for symmetric H some eigenvalue lies within r_i of θ_i.
The eigenvalue is far more accurate than the vector: with δ_i the distance from θ_i to the rest
of the spectrum, |λ − θ_i| ≤ r_i²/δ_i (Kato–Temple). :func:`lanczos` checks after every step
and stops once every wanted pair has

    r_i ≤ lanczos_tol · max(|θ_i|, floor·max|θ|)                        (``bound="residual"``)

— ARPACK's test; whatever the spectrum, an eigenvalue then lies within lanczos_tol·|θ_i| of θ_i —
or, with ``bound="gap"``, once min(r_i, r_i²/δ̂_i) does, δ̂_i being the distance to the nearest
other Ritz value: fewer steps, but δ̂_i only estimates δ_i, optimistically while a close
eigenvalue at the wanted end is still unresolved. Below the floor (the zero band) an eigenvalue
needs only lanczos_tol·floor·max|θ| absolute.

Neither bound sees an eigenvalue the Krylov space has not found yet. When the start vector is
nearly orthogonal to the extreme eigenvector, the extreme Ritz value can settle on the next
eigenvalue with a small residual, which vouches for that eigenvalue, and stay there for many
steps (seen on the 269k MLP of ``benchmarks.compare``; docs/benchmarks.md). Every Krylov method
shares this (ARPACK too); where a verdict hinges on the extreme value, a second ``seed`` is the
cheap check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy.linalg import eigh_tridiagonal
from torch import Tensor

from saddlescope.checks import check_choice, check_int, check_positive, check_seed
from saddlescope.errors import InvalidInputError, NonFiniteError
from saddlescope.operators import Operator, as_operator
from saddlescope.tolerance import LANCZOS_TOL

__all__ = [
    "LanczosResult",
    "Tridiagonal",
    "extreme_indices",
    "lanczos",
    "lanczos_tridiag",
    "ritz_bounds",
]

Which = Literal["smallest", "largest", "both"]
Bound = Literal["residual", "gap"]
StepHook = Callable[[np.ndarray, np.ndarray], bool]
_DGKS = 0.5**0.5  # reorthogonalise again when a pass removes more than 1 − 1/√2 of the norm
# Invariant subspace when β ≤ _BREAKDOWN·ε·‖T‖: rounding level (n·ε·‖T‖ is coarse enough in
# float32 to stop at a gap between outliers and the bulk).
_BREAKDOWN = 10


@dataclass(frozen=True, eq=False)
class Tridiagonal:
    """T = tridiag(β, α, β) from m Lanczos steps, and the basis Q (n × m) when kept.

    α and β are CPU float64 whatever the operator's device.

    Attributes:
        alpha: α, T's diagonal (length m): αⱼ = qⱼᵀ·H·qⱼ.
        beta: β, T's off-diagonal (length m − 1): the norms of the successive residuals.
        beta_last: β_m, the coupling to the next (unbuilt) vector: 0 when the Krylov space is
            invariant (the m Ritz values are then exact eigenvalues).
        basis: Q, the n × m orthonormal Lanczos basis on the operator's device, or None when
            not kept (it costs m·n numbers).
    """

    alpha: Tensor
    beta: Tensor
    beta_last: float
    basis: Tensor | None

    @property
    def steps(self) -> int:
        """m, the number of Lanczos steps taken."""
        return self.alpha.numel()

    def matrix(self) -> Tensor:
        """T as a dense m×m tensor."""
        return torch.diag(self.alpha) + torch.diag(self.beta, 1) + torch.diag(self.beta, -1)

    def prefix(self, steps: int) -> Tridiagonal:
        """What the first ``steps`` steps gave (runs are nested): no products."""
        if steps >= self.steps:
            return self
        return Tridiagonal(
            alpha=self.alpha[:steps],
            beta=self.beta[: steps - 1],
            beta_last=float(self.beta[steps - 1]),
            basis=None if self.basis is None else self.basis[:, :steps],
        )

    def to_dict(self) -> dict[str, object]:
        """α, β and β_m as lists."""
        return {
            "alpha": self.alpha.tolist(),
            "beta": self.beta.tolist(),
            "beta_last": self.beta_last,
        }

    def __str__(self) -> str:
        return f"Tridiagonal({self.steps} steps, β_m = {self.beta_last:.3g})"


def lanczos_tridiag(
    op: Operator,
    starts: Tensor,
    steps: int,
    *,
    keep_basis: bool = False,
    on_step: StepHook | None = None,
) -> list[Tridiagonal]:
    """``steps`` Lanczos steps with full reorthogonalisation from each start vector.

    The runs advance together, one block product per step; a run whose β falls to rounding
    level (an invariant subspace) stops there and costs no further products.

    Args:
        op: the symmetric operator.
        starts: one start vector (n,) or p of them as columns (n, p); each is normalised.
        steps: the most steps per run (at most n).
        keep_basis: keep each run's orthonormal basis Q (n × m) in its :class:`Tridiagonal`.
        on_step: for a single run only: ``on_step(alpha, beta)`` (NumPy float64, β including
            the newest coupling β_j) is called after every step and may stop the run by
            returning True.

    Returns:
        One :class:`Tridiagonal` per start vector.
    """
    Z = starts[:, None] if starts.ndim == 1 else starts
    n, p = Z.shape
    steps = min(check_int("steps", steps, 1), n)
    if on_step is not None and p != 1:
        raise InvalidInputError("on_step is for a single start vector; pass one column")
    norms = torch.linalg.vector_norm(Z, dim=0)
    if not bool(torch.isfinite(norms).all()) or bool((norms == 0).any()):
        raise InvalidInputError("every Lanczos start vector must be finite and non-zero")
    Q = Z.new_zeros(p, steps + 1, n)
    Q[:, 0] = (Z / norms).mT
    alpha, beta = Z.new_zeros(p, steps), Z.new_zeros(p, steps)
    length = _run(op, Q, alpha, beta, on_step)
    alpha, beta = alpha.to("cpu", torch.float64), beta.to("cpu", torch.float64)
    return [
        Tridiagonal(
            alpha=alpha[i, : length[i]].clone(),
            beta=beta[i, : length[i] - 1].clone(),
            beta_last=float(beta[i, length[i] - 1]),
            basis=Q[i, : length[i]].mT.contiguous() if keep_basis else None,
        )
        for i in range(p)
    ]


def _run(
    op: Operator, Q: Tensor, alpha: Tensor, beta: Tensor, on_step: StepHook | None
) -> list[int]:
    """The Lanczos recurrence in place on Q (p, steps+1, n), α and β (p, steps); run lengths."""
    p, steps = alpha.shape
    eps = torch.finfo(Q.dtype).eps
    length = [steps] * p
    active = torch.arange(p, device=Q.device)
    for j in range(steps):
        rows = slice(None) if active.numel() == p else active  # a view while all run
        W = _product(op, Q[rows, j].mT).mT  # (a, n)
        a = (Q[rows, j] * W).sum(dim=1)
        alpha[rows, j] = a
        W = W - a[:, None] * Q[rows, j]
        if j > 0:
            W = W - beta[rows, j - 1, None] * Q[rows, j - 1]
        W, b = _reorthogonalize(Q[rows, : j + 1], W)
        beta[rows, j] = b
        scale = alpha[rows, : j + 1].abs().amax(dim=1) + beta[rows, : j + 1].amax(dim=1)
        done = b <= _BREAKDOWN * eps * scale.clamp_min(eps)
        if on_step is not None and not bool(done.any()) and on_step(*_coefficients(alpha, beta, j)):
            length[0] = j + 1  # stopped by the hook: β_j stays, the coupling onward
            break
        if bool(done.any()):
            for i in active[done].tolist():
                beta[i, j] = 0.0
                length[i] = j + 1
            keep = ~done
            W, b, active = W[keep], b[keep], active[keep]
            rows = active
        if active.numel() == 0:
            break
        if j + 1 < steps:
            Q[rows, j + 1] = W / b[:, None]
    return length


def _coefficients(alpha: Tensor, beta: Tensor, j: int) -> tuple[np.ndarray, np.ndarray]:
    """The single run's α and β so far, as NumPy float64 (for a step hook)."""
    return alpha[0, : j + 1].double().cpu().numpy(), beta[0, : j + 1].double().cpu().numpy()


def _product(op: Operator, V: Tensor) -> Tensor:
    out = op @ V
    if not torch.isfinite(out).all():
        raise NonFiniteError(
            "the Hessian-vector product holds NaN or Inf; check θ and the model (float64?)"
        )
    return out


def _reorthogonalize(basis: Tensor, W: Tensor) -> tuple[Tensor, Tensor]:
    """W against every vector of the basis (a, j, n); again only where norms collapsed."""
    before = torch.linalg.vector_norm(W, dim=1)
    for _ in range(2):
        W = W - torch.einsum("akn,ak->an", basis, torch.einsum("akn,an->ak", basis, W))
        b = torch.linalg.vector_norm(W, dim=1)
        if not bool((b < _DGKS * before).any()):
            break
        before = b
    return W, b


@dataclass(frozen=True, eq=False)
class LanczosResult:
    """Extreme eigenpairs (ascending, values in CPU float64) with residual and error bounds.

    Attributes:
        eigenvalues: the wanted Ritz values θᵢ, ascending, CPU float64.
        eigenvectors: the Ritz vectors vᵢ as the columns of an n × k tensor on the operator's
            device (unit norm, in the order of ``eigenvalues``).
        residuals: ``residuals[i]`` = β_m|s_{m,i}| = ‖H vᵢ − θᵢ vᵢ‖ (exact up to rounding with
            full reorthogonalisation); not reported below ε·max|θ|.
        errors: ``errors[i]`` = min(rᵢ, rᵢ²/δᵢ), the estimated |θᵢ − λ_true|, δᵢ the gap to
            the nearest other Ritz value; not reported below ε·max|θ|.
        steps: m, the Lanczos steps taken (the Krylov basis size).
        products: operator products spent (one per step for a single start vector).
        converged: True when every wanted pair met ``lanczos_tol`` before ``lanczos_steps``
            ran out (or the Krylov space became invariant).
        scale: max|θ| over all Ritz values, a lower bound on ‖H‖.
        ritz_values: every Ritz value of the final basis, ascending (CPU float64): a coarse
            picture of the whole spectrum, e.g. for a histogram.
    """

    eigenvalues: Tensor
    eigenvectors: Tensor
    residuals: Tensor
    errors: Tensor
    steps: int
    products: int
    converged: bool
    scale: float
    ritz_values: Tensor | None = None

    def to_dict(self) -> dict[str, object]:
        """Eigenvalues, residuals, errors and the run's size (no eigenvectors)."""
        return {
            "eigenvalues": self.eigenvalues.tolist(),
            "residuals": self.residuals.tolist(),
            "errors": self.errors.tolist(),
            "steps": self.steps,
            "products": self.products,
            "converged": self.converged,
            "scale": self.scale,
        }

    def __str__(self) -> str:
        values = ", ".join(f"{x:.6g}" for x in self.eigenvalues.tolist())
        state = "converged" if self.converged else "NOT converged"
        return (
            f"LanczosResult([{values}], max residual {float(self.residuals.max()):.2g}; "
            f"{self.steps} steps, {state})"
        )


def extreme_indices(m: int, k: int, which: str) -> np.ndarray:
    """Indices of the k smallest, k largest or both (ascending, no repeats) of m sorted values.

    Args:
        m: how many sorted values there are.
        k: how many per end.
        which: "smallest", "largest" or "both".
    """
    k = min(k, m)
    if which == "smallest":
        return np.arange(k)
    if which == "largest":
        return np.arange(m - k, m)
    return np.unique(np.concatenate([np.arange(k), np.arange(max(0, m - k), m)]))


def ritz_bounds(
    alpha: np.ndarray, beta: np.ndarray, beta_last: float, k: int, which: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ritz values θ (ascending) and vectors S of T; the wanted indices; r and err there.

    err = min(r, r²/δ̂) with δ̂ the distance to the nearest other Ritz value.

    Args:
        alpha: T's diagonal (m).
        beta: T's off-diagonal (at least m − 1 entries; extra ones are ignored).
        beta_last: β_m, the coupling to the next Lanczos vector.
        k: wanted pairs per end.
        which: "smallest", "largest" or "both".
    """
    theta, S = eigh_tridiagonal(alpha, beta[: alpha.size - 1])
    idx = extreme_indices(theta.size, k, which)
    r = abs(beta_last) * np.abs(S[-1, idx])
    if theta.size == 1:
        return theta, S, idx, r, r
    others = np.abs(theta[idx, None] - theta[None, :])
    others[np.arange(idx.size), idx] = np.inf
    gap = others.min(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.where(gap > 0, np.minimum(r, r * r / gap), r)
    return theta, S, idx, r, err


def lanczos(
    op: Operator,
    k: int,
    *,
    which: Which = "both",
    lanczos_tol: float = LANCZOS_TOL,
    floor: float = 0.0,
    bound: Bound = "residual",
    lanczos_steps: int | None = None,
    seed: int = 0,
    start: Tensor | None = None,
) -> LanczosResult:
    """The k extreme eigenpairs of a symmetric operator (k per end for ``"both"``).

    Grows one Krylov basis (full reorthogonalisation), checking after every step, until every
    wanted Ritz value meets ``lanczos_tol`` (relative, see the module docstring for ``bound``),
    or the basis holds ``lanczos_steps`` vectors; ``converged`` says which. No product is spent
    beyond the steps: the residuals come from the recurrence.

    Args:
        op: the symmetric operator (its dtype and device are the vectors').
        k: eigenpairs wanted per end.
        which: "smallest" (most negative), "largest" or "both" ends.
        lanczos_tol: relative accuracy of each wanted eigenvalue; never below 10·ε·max|θ|,
            since rounding in the products limits what can be reached.
        floor: the zero band as a fraction of max|θ| (the objective's rtol): below it an
            eigenvalue needs only lanczos_tol·floor·max|θ| absolute; never below √ε.
        bound: "residual" (r ≤ target, ARPACK's test) or "gap" (min(r, r²/δ̂) ≤ target).
        lanczos_steps: the largest basis (default min(n, max(20·k, 100))).
        seed: seeds the start vector (drawn on the CPU, so any device sees the same one).
        start: the start vector instead (any nonzero n-vector): a warm start, e.g. earlier
            Ritz vectors of a nearby operator plus a little of a random vector, converges in
            fewer steps (see :class:`~saddlescope.monitor.CurvatureMonitor`).

    >>> H = torch.diag(torch.arange(1.0, 101.0, dtype=torch.float64))
    >>> r = lanczos(H, 2, which="largest", lanczos_tol=1e-10)
    >>> [round(x, 8) for x in r.eigenvalues.tolist()], r.converged
    ([99.0, 100.0], True)
    """
    op = as_operator(op)
    check_choice("which", which, ("smallest", "largest", "both"))
    check_choice("bound", bound, ("gap", "residual"))
    check_positive("lanczos_tol", lanczos_tol, allow_zero=True)
    check_positive("floor", floor, allow_zero=True)
    check_int("k", k, 1)
    check_seed(seed)
    n = op.shape[0]
    steps = (
        min(n, max(20 * k, 100))
        if lanczos_steps is None
        else check_int("lanczos_steps", lanczos_steps, 1)
    )
    eps = float(torch.finfo(op.dtype).eps)
    done = _stopping_rule(lanczos_tol, max(floor, eps**0.5), bound, eps)
    first_check = min(n, (2 if which == "both" else 1) * k + 1)

    def converged_now(alpha: np.ndarray, beta: np.ndarray) -> bool:
        m = alpha.size
        if m < first_check or (m > 100 and m % (m // 50)):  # every step, then every 2 %
            return False
        theta, _, idx, r, err = ritz_bounds(alpha, beta, beta[-1], k, which)
        return done(theta, idx, r, err)

    v0 = _start_vector(n, seed, start).to(device=op.device, dtype=op.dtype)
    (tri,) = lanczos_tridiag(op, v0, steps, keep_basis=True, on_step=converged_now)
    theta, S, idx, r, err = ritz_bounds(
        tri.alpha.numpy(), tri.beta.numpy(), tri.beta_last, k, which
    )
    assert tri.basis is not None
    vectors = tri.basis @ torch.from_numpy(S[:, idx]).to(tri.basis)
    scale = float(np.abs(theta).max())
    rounding = eps * scale  # the recurrence can report 0; the products are not that exact
    return LanczosResult(
        eigenvalues=torch.from_numpy(theta[idx].copy()),
        eigenvectors=vectors,
        residuals=torch.from_numpy(np.maximum(r, rounding)),
        errors=torch.from_numpy(np.maximum(err, rounding)),
        steps=tri.steps,
        products=tri.steps,
        converged=tri.beta_last == 0.0 or done(theta, idx, r, err),
        scale=scale,
        ritz_values=torch.from_numpy(np.sort(theta)),
    )


def _start_vector(n: int, seed: int, start: Tensor | None) -> Tensor:
    """``start`` checked, or a random vector from ``seed`` (drawn on the CPU)."""
    if start is None:
        return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if start.shape != (n,) or not bool(torch.isfinite(start).all()) or not start.any():
        raise InvalidInputError(
            f"start must be a finite, nonzero vector of {n} numbers, got shape {tuple(start.shape)}"
        )
    return start


def _stopping_rule(
    tol: float, floor: float, bound: Bound, eps: float
) -> Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], bool]:
    """done(θ, wanted indices, r, err): every wanted pair meets its target (module docstring)."""

    def done(theta: np.ndarray, idx: np.ndarray, r: np.ndarray, err: np.ndarray) -> bool:
        scale = float(np.abs(theta).max())
        test = r if bound == "residual" else err
        # never below 10·ε·max|θ|: residuals at rounding level are not there to be reached
        target = np.maximum(tol * np.maximum(np.abs(theta[idx]), floor * scale), 10 * eps * scale)
        return bool((test <= target).all())

    return done
