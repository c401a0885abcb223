"""Lanczos in torch: the tridiagonalisation, and extreme eigenpairs to an achieved accuracy.

For a symmetric operator H (any callable ``v ↦ H·v`` on torch vectors; on the GPU too), m steps
of Lanczos from a unit vector q₁ build an orthonormal basis Q = [q₁ … q_m] of the Krylov space
and the tridiagonal T = QᵀHQ (diagonal α, off-diagonal β):

    H q_j = β_{j−1} q_{j−1} + α_j q_j + β_j q_{j+1}.

Every new vector is re-orthogonalised against all previous ones (twice, "twice is enough"), so
the basis stays orthonormal in floating point and no spurious copies of eigenvalues appear.

A Ritz pair (θ_i, y_i = Q s_i) of T has the residual ‖H y_i − θ_i y_i‖ = β_m·|s_{m,i}| — known
without another product. :func:`lanczos_eigs` grows the basis until the wanted Ritz pairs all
have β_m|s_{m,i}| ≤ tol·max|θ|, so ``tol`` is the achieved accuracy: for a symmetric H each such
θ_i is within tol·‖H‖ of an eigenvalue. The returned residuals are then measured, not estimated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from saddlescope.errors import InvalidInputError, check_choice, check_positive

__all__ = ["LanczosResult", "Tridiagonal", "lanczos_eigs", "lanczos_tridiag"]

MatVec = Callable[[Tensor], Tensor]


@dataclass(frozen=True, eq=False)
class Tridiagonal:
    """T = tridiag(β, α, β) from m Lanczos steps, and the basis Q (n × m) when kept.

    ``beta_last`` is β_m, the coupling to the next (unbuilt) vector: 0 when the Krylov space is
    invariant (the m Ritz values are then exact eigenvalues).
    """

    alpha: Tensor
    beta: Tensor  # length m − 1
    beta_last: float
    basis: Tensor | None

    @property
    def steps(self) -> int:
        return self.alpha.numel()

    def matrix(self) -> Tensor:
        return torch.diag(self.alpha) + torch.diag(self.beta, 1) + torch.diag(self.beta, -1)


def lanczos_tridiag(
    matvec: MatVec,
    v0: Tensor,
    steps: int,
    *,
    keep_basis: bool = True,
    on_step: Callable[[Tensor, Tensor, Tensor, int], bool] | None = None,
) -> Tridiagonal:
    """``steps`` Lanczos steps from v0 with full reorthogonalisation (one product per step).

    ``on_step(alpha, beta, basis, j)`` may stop the iteration early by returning True.
    Stops by itself when β falls to rounding level (an invariant subspace was found).
    """
    n = v0.numel()
    steps = min(int(steps), n)
    if steps < 1:
        raise InvalidInputError(f"steps must be ≥ 1, got {steps}")
    norm = torch.linalg.vector_norm(v0)
    if not torch.isfinite(norm) or norm == 0:
        raise InvalidInputError("the Lanczos start vector must be finite and non-zero")
    Q = torch.empty(steps + 1, n, dtype=v0.dtype, device=v0.device)
    Q[0] = v0 / norm
    alpha = torch.zeros(steps, dtype=v0.dtype, device=v0.device)
    beta = torch.zeros(steps, dtype=v0.dtype, device=v0.device)
    eps = torch.finfo(v0.dtype).eps
    m = steps
    for j in range(steps):
        w = matvec(Q[j])
        alpha[j] = Q[j] @ w
        for _ in range(2):  # full reorthogonalisation, twice
            w = w - Q[: j + 1].mT @ (Q[: j + 1] @ w)
        beta[j] = torch.linalg.vector_norm(w)
        scale = float(alpha[: j + 1].abs().max()) + float(beta[: j + 1].max())
        if float(beta[j]) <= n * eps * max(scale, eps):
            beta[j] = 0.0
            m = j + 1
            break
        Q[j + 1] = w / beta[j]
        if on_step is not None and on_step(alpha[: j + 1], beta[: j + 1], Q[: j + 1], j + 1):
            m = j + 1
            break
    return Tridiagonal(
        alpha=alpha[:m].clone(),
        beta=beta[: m - 1].clone(),
        beta_last=float(beta[m - 1]),
        basis=Q[:m].mT.contiguous() if keep_basis else None,
    )


@dataclass(frozen=True, eq=False)
class LanczosResult:
    """Extreme eigenpairs (ascending), their measured residuals ‖Hv − λv‖, and the cost."""

    eigenvalues: Tensor
    eigenvectors: Tensor
    residuals: Tensor
    steps: int
    products: int
    converged: bool
    scale: float  # max|θ| over all Ritz values: a lower bound on ‖H‖


def _wanted(theta: Tensor, k: int, which: str) -> Tensor:
    m = theta.numel()
    k = min(k, m)
    if which == "smallest":
        return torch.arange(k)
    if which == "largest":
        return torch.arange(m - k, m)
    return torch.unique(torch.cat([torch.arange(k), torch.arange(max(0, m - k), m)]))


def lanczos_eigs(
    matvec: MatVec,
    n: int,
    k: int,
    *,
    which: Literal["smallest", "largest", "both"] = "both",
    tol: float = 1e-8,
    max_steps: int | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> LanczosResult:
    """The k extreme eigenpairs of a symmetric operator (k per end for ``"both"``).

    Grows one Krylov basis (full reorthogonalisation) until every wanted Ritz pair has
    β_m|s_{m,i}| ≤ ``tol``·max|θ|, or ``max_steps`` (default min(n, max(20·k, 100))). The
    residuals are then measured with k more products. ``converged`` says whether ``tol`` was met.

    >>> H = torch.diag(torch.arange(1.0, 101.0, dtype=torch.float64))
    >>> r = lanczos_eigs(lambda v: H @ v, 100, 2, which="largest", tol=1e-10)
    >>> [round(x, 8) for x in r.eigenvalues.tolist()], r.converged
    ([99.0, 100.0], True)
    """
    check_choice("which", which, ("smallest", "largest", "both"))
    check_positive("tol", tol)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")
    if max_steps is None:
        max_steps = min(n, max(20 * k, 100))
    gen = torch.Generator().manual_seed(seed)
    v0 = torch.randn(n, generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    state = {"next_check": min(n, 2 * k + 8)}

    def converged_now(alpha: Tensor, beta: Tensor, Q: Tensor, j: int) -> bool:
        if j < state["next_check"] and j < max_steps:
            return False
        state["next_check"] = j + max(2, j // 8)
        T = torch.diag(alpha) + torch.diag(beta[:-1], 1) + torch.diag(beta[:-1], -1)
        theta, S = torch.linalg.eigh(T)
        idx = _wanted(theta, k, which)
        bound = beta[-1].abs() * S[-1, idx].abs()
        return bool((bound <= tol * theta.abs().max()).all())

    tri = lanczos_tridiag(matvec, v0, max_steps, on_step=converged_now)
    theta, S = torch.linalg.eigh(tri.matrix())
    idx = _wanted(theta, k, which)
    bound = abs(tri.beta_last) * S[-1, idx].abs()
    scale = float(theta.abs().max())
    assert tri.basis is not None
    vectors = tri.basis @ S[:, idx]
    values = theta[idx]
    residuals = torch.stack(
        [
            torch.linalg.vector_norm(matvec(vectors[:, i]) - values[i] * vectors[:, i])
            for i in range(values.numel())
        ]
    )
    return LanczosResult(
        eigenvalues=values,
        eigenvectors=vectors,
        residuals=residuals,
        steps=tri.steps,
        products=tri.steps + values.numel(),
        converged=bool((bound <= tol * scale).all()),
        scale=scale,
    )
