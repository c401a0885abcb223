"""Spectra: tolerance semantics, Lanczos against dense eigh, dense fallback."""

from __future__ import annotations

import pytest
import torch

from conftest import classification_data, make_mlp
from saddlescope import Objective, hessian_spectrum, spectrum_from_matrix

F64 = torch.float64


def test_counts_follow_the_stated_tolerance():
    H = torch.diag(torch.tensor([-3.0, -1e-9, 0.0, 2e-7, 5e-6, 10.0], dtype=F64))
    s = spectrum_from_matrix(H, rtol=1e-6)  # tol = 1e-6 · 10 = 1e-5
    assert s.threshold == pytest.approx(1e-5)
    assert (s.inertia.n_pos, s.inertia.n_neg, s.inertia.n_zero) == (1, 1, 4)
    s = spectrum_from_matrix(H, rtol=1e-8)  # tol = 1e-7
    assert (s.inertia.n_pos, s.inertia.n_neg, s.inertia.n_zero) == (3, 1, 2)
    s = spectrum_from_matrix(H, rtol=0.0, atol=1.0)
    assert (s.inertia.n_pos, s.inertia.n_neg, s.inertia.n_zero) == (1, 1, 4)
    assert s.to_dict()["threshold"] == 1.0 and s.complete
    assert "(n-=1, n0=4, n+=1)" in str(s)


def test_zero_matrix_counts_every_eigenvalue_as_zero():
    s = spectrum_from_matrix(torch.zeros(3, 3, dtype=F64))
    assert (s.inertia.n_pos, s.inertia.n_neg, s.inertia.n_zero) == (0, 0, 3)


def test_float32_default_tolerance_is_looser():
    s32 = spectrum_from_matrix(torch.eye(2, dtype=torch.float32))
    s64 = spectrum_from_matrix(torch.eye(2, dtype=F64))
    assert s32.rtol > s64.rtol


@pytest.fixture(scope="module")
def mlp_obj():
    model = make_mlp([5, 12, 8, 3], "tanh", seed=4)
    x, y = classification_data(40, 5, 3, seed=4)
    return Objective(model, torch.nn.CrossEntropyLoss(), (x, y), dtype=F64)


@pytest.mark.parametrize("which", ["largest", "smallest", "both"])
@pytest.mark.parametrize("method", ["lanczos", "arpack"])
def test_lanczos_extremes_equal_dense_eigh(mlp_obj, which, method):
    theta = mlp_obj.theta0
    dense = hessian_spectrum(mlp_obj, theta)
    assert dense.method == "dense" and dense.complete and dense.hvps == mlp_obj.num_params
    k = 3
    lz = hessian_spectrum(mlp_obj, theta, k=k, which=which, method=method)
    assert lz.method == method and not lz.complete
    lam = dense.eigenvalues
    expect = {"largest": lam[-k:], "smallest": lam[:k], "both": torch.cat([lam[:k], lam[-k:]])}[
        which
    ]
    scale = float(lam.abs().max())
    assert torch.allclose(lz.eigenvalues, expect, rtol=0, atol=1e-9 * scale)
    assert lz.residuals is not None and float(lz.residuals.max()) < 1e-7 * scale
    assert lz.hvps < mlp_obj.num_params  # cheaper than building the dense Hessian
    # Extreme eigenvectors agree up to sign (these eigenvalues are simple).
    V = dense.eigenvectors
    idx = {"largest": range(-k, 0), "smallest": range(k), "both": [*range(k), *range(-k, 0)]}[which]
    for col, j in enumerate(idx):
        assert abs(float(V[:, j] @ lz.eigenvectors[:, col])) == pytest.approx(1, abs=1e-6)


def test_auto_uses_lanczos_when_dense_does_not_fit(tanh_mlp):
    model, loss_fn, data = tanh_mlp
    obj = Objective(model, loss_fn, data, dtype=F64, memory_budget=1000)
    s = hessian_spectrum(obj, obj.theta0)
    assert s.method == "lanczos" and s.eigenvalues.numel() == 12


def test_values_only(mlp_obj):
    s = hessian_spectrum(mlp_obj, mlp_obj.theta0, eigenvectors=False)
    assert s.eigenvectors is None and s.complete


@pytest.mark.parametrize("method", ["lanczos", "dense"])
def test_one_end_spectrum_uses_the_whole_scale_for_its_tolerance(method):
    from saddlescope import toy

    d = torch.tensor([-2e-9, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.0], dtype=F64)
    obj = toy.scalar_objective(lambda w: 0.5 * (d * w**2).sum(), [0.0] * 10)
    low = hessian_spectrum(obj, obj.theta0, k=1, which="smallest", method=method)
    assert low.which == "smallest" and not low.complete
    assert low.min == pytest.approx(-2e-9, abs=1e-12)
    assert low.scale == pytest.approx(4.0, rel=1e-3)
    assert low.threshold == pytest.approx(4e-6, rel=1e-3)
    assert low.inertia is None  # a partial spectrum has no inertia, not a wrong one
    assert int((low.eigenvalues.abs() <= low.threshold).sum()) == 1  # −2e-9 is zero here


def test_iterative_spectrum_says_how_accurate_it_is(mlp_obj):
    done = hessian_spectrum(mlp_obj, mlp_obj.theta0, k=1, method="lanczos", lanczos_tol=1e-6)
    cut = hessian_spectrum(
        mlp_obj, mlp_obj.theta0, k=2, method="lanczos", lanczos_tol=1e-12, lanczos_steps=4
    )
    assert done.converged and "max ‖Hv − λv‖" in str(done) and "NOT" not in str(done)
    assert not cut.converged and "NOT converged" in str(cut)
    assert cut.to_dict()["errors"] is not None


def test_a_lapack_failure_falls_back_to_scipys_mrrr(monkeypatch):
    from saddlescope.operators import symmetric_eigh

    gen = torch.Generator().manual_seed(0)
    A = torch.randn(12, 12, generator=gen, dtype=torch.float64)
    A = A + A.T
    lam = torch.linalg.eigvalsh(A)

    def fails(*args, **kwargs):
        raise torch.linalg.LinAlgError("linalg.eigh: The algorithm failed to converge")

    monkeypatch.setattr(torch.linalg, "eigh", fails)
    monkeypatch.setattr(torch.linalg, "eigvalsh", fails)
    lam2, U2 = symmetric_eigh(A)
    assert torch.allclose(lam2, lam, atol=1e-12) and U2.dtype == A.dtype
    assert torch.allclose(U2 @ torch.diag(lam2) @ U2.T, A, atol=1e-10)
    only, none = symmetric_eigh(A.float(), eigenvectors=False)
    assert none is None and only.dtype == torch.float32
    assert torch.allclose(only.double(), lam, atol=1e-4)
