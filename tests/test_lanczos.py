"""The torch Lanczos against dense eigh: random, clustered and repeated spectra, both ends."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import symmetric
from saddlescope import CallableOperator, InvalidInputError, MatrixOperator
from saddlescope.lanczos import extreme_indices, lanczos, lanczos_tridiag

F64 = torch.float64


def extremes(exact: torch.Tensor, k: int, which: str) -> torch.Tensor:
    """The k smallest, k largest or both of ascending eigenvalues, as lanczos returns them."""
    return exact[torch.from_numpy(extreme_indices(exact.numel(), k, which))]


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
    res = lanczos(H, k, which=which, lanczos_tol=1e-10, lanczos_steps=n, seed=seed)
    exact = torch.linalg.eigvalsh(H)
    want = extremes(exact, k, which)
    assert res.converged
    scale = float(exact.abs().max())
    assert torch.allclose(res.eigenvalues, want, rtol=0, atol=1e-8 * scale)
    V = res.eigenvectors
    assert torch.allclose(V.T @ V, torch.eye(V.shape[1], dtype=F64), atol=1e-8)
    # the residuals come from the recurrence, not from extra products: they are the true ones
    measured = torch.linalg.vector_norm(H @ V - V * res.eigenvalues, dim=0)
    assert torch.allclose(res.residuals, measured, rtol=1e-6, atol=1e-12 * scale)
    assert res.products == res.steps


@settings(max_examples=40, deadline=None)
@given(n=st.integers(20, 150), k=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_residual_bound_holds_for_any_spectrum(n, k, seed):
    """Each θ has an eigenvalue within r of it (Bauer–Fike for symmetric H), at any step."""
    g = torch.Generator().manual_seed(seed)
    lam = torch.randn(n, generator=g, dtype=F64) ** 3
    H = symmetric(lam, seed)
    res = lanczos(H, k, which="both", lanczos_tol=1e-3, bound="residual", seed=seed)
    exact = torch.linalg.eigvalsh(H)
    nearest = (res.eigenvalues[:, None] - exact[None, :]).abs().min(dim=1).values
    assert bool((nearest <= res.residuals * (1 + 1e-9) + 1e-12).all())
    assert res.converged and bool((res.residuals <= 1e-3 * res.eigenvalues.abs()).all())


def separated(n: int, seed: int) -> torch.Tensor:
    """A spectrum of both signs whose three extremes at each end are ≥ 2 % of ‖H‖ apart."""
    g = torch.Generator().manual_seed(seed)
    inner = torch.rand(n - 6, generator=g, dtype=F64) * 1.6 - 0.8
    ends = torch.tensor([-1.0, -0.95, -0.9, 0.9, 0.95, 1.0], dtype=F64) * (1 + seed % 7)
    return torch.cat([inner * (1 + seed % 7), ends])


@pytest.mark.parametrize("which", ["smallest", "largest", "both"])
@pytest.mark.parametrize("tol", [1e-2, 1e-3, 1e-6])
def test_tolerance_is_the_achieved_relative_accuracy(which, tol):
    """Over seeded operators with separated ends: the extreme eigenvalue always within tol·|λ|,
    the three extremes at least 95 % of the time (a Krylov method can miss an eigenvalue whose
    component in the start vector is tiny, whatever its stopping rule), and the error estimate
    always covers the distance to the nearest eigenvalue."""
    misses, trials = 0, 0
    for seed in range(20):
        n = 60 + 7 * seed
        H = symmetric(separated(n, seed), seed)
        exact = torch.linalg.eigvalsh(H)
        for k in (1, 3):
            res = lanczos(H, k, which=which, lanczos_tol=tol, seed=seed)
            want = extremes(exact, k, which)
            assert res.converged
            error = (res.eigenvalues - want).abs()
            nearest = (res.eigenvalues[:, None] - exact[None, :]).abs().min(dim=1).values
            assert bool((nearest <= 1.01 * res.errors + 1e-12 * float(exact.abs().max())).all())
            if k == 1:
                assert bool((error <= tol * want.abs()).all()), (seed, error, res.errors)
            else:
                trials += error.numel()
                misses += int((error > tol * want.abs()).sum())
    assert misses <= 0.05 * trials, f"{misses} of {trials} eigenvalues missed lanczos_tol={tol}"


def test_gap_bound_needs_fewer_steps_than_the_residual_for_the_same_accuracy():
    H = symmetric(torch.linspace(-1, 5, 300, dtype=F64) ** 3, 3)
    exact = torch.linalg.eigvalsh(H)
    gap = lanczos(H, 1, which="largest", lanczos_tol=1e-6, bound="gap")
    res = lanczos(H, 1, which="largest", lanczos_tol=1e-6)
    for r in (gap, res):
        assert abs(float(r.eigenvalues[-1] - exact[-1])) <= 1e-6 * float(exact[-1])
    assert gap.steps < 0.8 * res.steps


def test_clustered_and_repeated_eigenvalues():
    lam = torch.cat(
        [
            torch.full((5,), -3.0),
            torch.linspace(-1, 1, 80),
            torch.tensor([2.0, 2.0 + 1e-7, 2.0 + 2e-7]),
        ]
    )
    H = symmetric(lam.to(F64), 1)
    res = lanczos(H, 3, which="both", lanczos_tol=1e-10, lanczos_steps=88)
    assert torch.allclose(res.eigenvalues[:3], torch.full((3,), -3.0, dtype=F64), atol=1e-8)
    assert torch.allclose(
        res.eigenvalues[3:], torch.tensor([2.0, 2 + 1e-7, 2 + 2e-7], dtype=F64), atol=1e-8
    )
    assert float(res.residuals.max()) < 1e-7


def test_tridiagonal_is_orthonormal_and_exact_on_an_invariant_space():
    H = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64))
    (tri,) = lanczos_tridiag(MatrixOperator(H), torch.ones(4, dtype=F64), 10, keep_basis=True)
    assert tri.steps == 4 and tri.beta_last == 0.0
    Q = tri.basis
    assert torch.allclose(Q.T @ Q, torch.eye(4, dtype=F64), atol=1e-12)
    assert torch.allclose(torch.linalg.eigvalsh(tri.matrix()), torch.diag(H), atol=1e-12)


def test_bad_input():
    with pytest.raises(InvalidInputError, match="start vector"):
        lanczos_tridiag(MatrixOperator(torch.eye(3, dtype=F64)), torch.zeros(3, dtype=F64), 2)
    with pytest.raises(InvalidInputError, match="k must"):
        lanczos(torch.eye(3, dtype=F64), 0)
    with pytest.raises(InvalidInputError, match="unknown which"):
        lanczos(torch.eye(3, dtype=F64), 1, which="middle")
    with pytest.raises(InvalidInputError, match="unknown bound"):
        lanczos(torch.eye(3, dtype=F64), 1, bound="tight")  # type: ignore[arg-type]


def test_float32_outliers_do_not_stop_lanczos_early():
    """A few huge outliers over a bulk: β stays far above rounding, so no false invariance."""
    n = 4000
    d = torch.cat([torch.full((3,), 1e4), torch.linspace(-1, 1, n - 3)]).to(torch.float32)
    res = lanczos(
        CallableOperator(lambda v: d * v, n, dtype=torch.float32), 1, which="both", lanczos_tol=1e-3
    )
    assert res.steps > 3
    assert abs(float(res.eigenvalues[0]) + 1.0) <= float(res.errors[0]) + 1e-3
    assert float(res.eigenvalues[-1]) == pytest.approx(1e4, rel=1e-5)
    assert bool((res.residuals > 0).all())  # never reported as exactly zero
