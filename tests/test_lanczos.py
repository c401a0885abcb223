"""The torch Lanczos against dense eigh: random, clustered and repeated spectra, both ends."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from saddlescope import InvalidInputError
from saddlescope.lanczos import lanczos_eigs, lanczos_tridiag

F64 = torch.float64


def symmetric(eigenvalues: torch.Tensor, seed: int) -> torch.Tensor:
    n = eigenvalues.numel()
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    return Q @ torch.diag(eigenvalues) @ Q.T


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(30, 120),
    k=st.integers(1, 4),
    which=st.sampled_from(["smallest", "largest", "both"]),
    seed=st.integers(0, 10_000),
)
def test_extremes_match_eigh_on_random_symmetric_operators(n, k, which, seed):
    g = torch.Generator().manual_seed(seed)
    lam = torch.randn(n, generator=g, dtype=F64) * torch.rand(n, generator=g, dtype=F64) * 3
    H = symmetric(lam, seed)
    res = lanczos_eigs(lambda v: H @ v, n, k, which=which, tol=1e-10, max_steps=n, seed=seed)
    exact = torch.linalg.eigvalsh(H)
    want = {
        "smallest": exact[:k],
        "largest": exact[-k:],
        "both": torch.cat([exact[:k], exact[-k:]]),
    }[which]
    assert res.converged
    scale = float(exact.abs().max())
    assert torch.allclose(res.eigenvalues, want, rtol=0, atol=1e-8 * scale)
    assert float(res.residuals.max()) <= 1e-8 * scale
    V = res.eigenvectors
    assert torch.allclose(V.T @ V, torch.eye(V.shape[1], dtype=F64), atol=1e-8)


def test_clustered_and_repeated_eigenvalues():
    lam = torch.cat(
        [
            torch.full((5,), -3.0),
            torch.linspace(-1, 1, 80),
            torch.tensor([2.0, 2.0 + 1e-7, 2.0 + 2e-7]),
        ]
    )
    H = symmetric(lam.to(F64), 1)
    res = lanczos_eigs(lambda v: H @ v, lam.numel(), 3, which="both", tol=1e-10, max_steps=88)
    assert torch.allclose(res.eigenvalues[:3], torch.full((3,), -3.0, dtype=F64), atol=1e-8)
    assert torch.allclose(
        res.eigenvalues[3:], torch.tensor([2.0, 2 + 1e-7, 2 + 2e-7], dtype=F64), atol=1e-8
    )
    assert float(res.residuals.max()) < 1e-7


def test_tolerance_is_the_achieved_accuracy():
    H = symmetric(torch.linspace(-1, 5, 200, dtype=F64) ** 3, 3)
    exact = torch.linalg.eigvalsh(H)
    loose = lanczos_eigs(lambda v: H @ v, 200, 1, which="largest", tol=1e-3)
    tight = lanczos_eigs(lambda v: H @ v, 200, 1, which="largest", tol=1e-10)
    assert loose.steps < tight.steps
    for r, tol in ((loose, 1e-3), (tight, 1e-10)):
        assert abs(float(r.eigenvalues[-1] - exact[-1])) <= tol * float(exact.abs().max())
        assert float(r.residuals[-1]) <= 1.01 * tol * r.scale


def test_tridiagonal_is_orthonormal_and_exact_on_an_invariant_space():
    H = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64))
    tri = lanczos_tridiag(lambda v: H @ v, torch.ones(4, dtype=F64), 10)
    assert tri.steps == 4 and tri.beta_last == 0.0
    Q = tri.basis
    assert torch.allclose(Q.T @ Q, torch.eye(4, dtype=F64), atol=1e-12)
    assert torch.allclose(torch.linalg.eigvalsh(tri.matrix()), torch.diag(H), atol=1e-12)


def test_bad_input():
    with pytest.raises(InvalidInputError, match="start vector"):
        lanczos_tridiag(lambda v: v, torch.zeros(3, dtype=F64), 2)
    with pytest.raises(InvalidInputError, match="k must"):
        lanczos_eigs(lambda v: v, 3, 0)
    with pytest.raises(InvalidInputError, match="unknown which"):
        lanczos_eigs(lambda v: v, 3, 1, which="middle")
