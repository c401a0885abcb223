"""Torch MINRES (saddlescope.minres) against SciPy's, the pseudo-inverse and explicit curvature."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse.linalg as sla
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from saddlescope import InvalidInputError, MatrixOperator, minres

F64 = torch.float64


def symmetric(eigenvalues, seed=0):
    """Q·diag(λ)·Qᵀ with a random orthogonal Q."""
    gen = torch.Generator().manual_seed(seed)
    lam = torch.as_tensor(eigenvalues, dtype=F64)
    Q, _ = torch.linalg.qr(torch.randn(lam.numel(), lam.numel(), generator=gen, dtype=F64))
    A = Q @ torch.diag(lam) @ Q.T
    return (A + A.T) / 2, Q


def rhs(n, seed=1):
    return torch.randn(n, generator=torch.Generator().manual_seed(seed), dtype=F64)


@pytest.mark.parametrize(
    "eigenvalues",
    [
        np.linspace(0.5, 4.0, 30),  # positive definite
        np.concatenate([np.linspace(-3, -0.5, 10), np.linspace(0.5, 4.0, 20)]),  # indefinite
    ],
    ids=["definite", "indefinite"],
)
def test_minres_equals_scipy_and_the_solution(eigenvalues):
    A, _ = symmetric(eigenvalues)
    b = rhs(30)
    res = minres(MatrixOperator(A), b, rtol=1e-12)
    ref, info = sla.minres(A.numpy(), b.numpy(), rtol=1e-12)
    assert res.status == "converged" and info == 0
    assert torch.allclose(res.x, torch.from_numpy(ref), atol=1e-9)
    assert torch.allclose(res.x, torch.linalg.solve(A, b), atol=1e-9)
    assert torch.allclose(res.Ax, A @ res.x, atol=1e-12)  # the kept product is exact
    assert res.relative_residual <= 1e-11 and res.iterations <= 40


def test_shift_solves_the_shifted_system():
    A, _ = symmetric(np.linspace(1.0, 5.0, 20))
    b = rhs(20)
    res = minres(MatrixOperator(A), b, shift=2.5, rtol=1e-12)
    assert torch.allclose(res.x, torch.linalg.solve(A - 2.5 * torch.eye(20, dtype=F64), b))


def test_singular_compatible_system_converges_to_the_minimum_norm_solution():
    A, _ = symmetric([0.0] * 4 + list(np.linspace(1.0, 3.0, 16)))
    b = A @ rhs(20)  # in the range
    res = minres(MatrixOperator(A), b, rtol=1e-12)
    assert res.status == "converged"
    assert torch.allclose(res.x, torch.linalg.pinv(A) @ b, atol=1e-9)


def test_singular_incompatible_system_ends_as_least_squares():
    A, Q = symmetric([0.0] * 4 + list(np.linspace(1.0, 3.0, 16)))
    b = rhs(20)
    res = minres(MatrixOperator(A), b, rtol=1e-8)
    assert res.status == "least-squares" and res.solved
    in_range = Q[:, 4:] @ (Q[:, 4:].T @ b)
    assert torch.allclose(res.Ax, in_range, atol=1e-6)  # the range part solved exactly
    null_part = torch.linalg.vector_norm(Q[:, :4].T @ b)
    assert res.residual_norm == pytest.approx(float(null_part), rel=1e-8)


def test_maxiter_is_reported_never_read_as_converged():
    A, _ = symmetric(np.geomspace(1e-3, 1e3, 40))
    res = minres(MatrixOperator(A), rhs(40), rtol=1e-12, maxiter=5)
    assert res.status == "maxiter" and not res.solved and res.iterations == 5
    assert res.relative_residual > 1e-12


def test_non_positive_curvature_is_detected_with_its_direction():
    A, _ = symmetric(np.concatenate([[-2.0, -0.3], np.linspace(0.5, 4.0, 18)]))
    b = rhs(20)
    res = minres(MatrixOperator(A), b, rtol=1e-10, stop_on_npc=True)
    assert res.status == "npc" and res.npc is not None
    d = res.npc
    assert float(d @ A @ d) <= 0
    assert res.npc_curvature == pytest.approx(float(d @ A @ d / (d @ d)), rel=1e-10)
    # the iterate it stopped at is still a descent direction of ½‖Ax − b‖² (or zero)
    assert float((A @ res.x) @ (-b)) <= 0
    full = minres(MatrixOperator(A), b, rtol=1e-10)  # without stopping: solves, keeps the npc
    assert full.status == "converged" and full.npc is not None


def test_no_npc_on_a_positive_definite_operator():
    A, _ = symmetric(np.linspace(0.1, 2.0, 25))
    res = minres(MatrixOperator(A), rhs(25), stop_on_npc=True)
    assert res.status == "converged" and res.npc is None and res.npc_curvature is None


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-5, 5).filter(lambda x: abs(x) > 0.05), min_size=3, max_size=12),
    st.integers(0, 10_000),
)
def test_detected_npc_direction_always_has_non_positive_curvature(eigenvalues, seed):
    A, _ = symmetric(eigenvalues, seed)
    res = minres(MatrixOperator(A), rhs(len(eigenvalues), seed), rtol=1e-10, stop_on_npc=True)
    if res.npc is not None:
        d = res.npc
        assert float(d @ A @ d) <= 1e-10 * float(d @ d) * max(abs(x) for x in eigenvalues)
    if min(eigenvalues) > 0:
        assert res.npc is None


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-5, 5).filter(lambda x: abs(x) > 0.05), min_size=3, max_size=12),
    st.integers(0, 10_000),
    st.floats(0.01, 0.99),
)
def test_boundary_stops_at_the_first_iterate_outside_the_ball_scaled_onto_it(
    eigenvalues, seed, fraction
):
    A, _ = symmetric(eigenvalues, seed)
    b = rhs(len(eigenvalues), seed)
    full = minres(MatrixOperator(A), b, rtol=1e-12)
    radius = fraction * float(torch.linalg.vector_norm(full.x))
    res = minres(MatrixOperator(A), b, rtol=1e-12, max_norm=radius)
    assert res.status == "boundary"
    assert float(torch.linalg.vector_norm(res.x)) == pytest.approx(radius, rel=1e-12)
    assert torch.allclose(res.Ax, A @ res.x, atol=1e-10)
    # x is the plain iterate k (same iterations, no radius) scaled; iterate k − 1 was inside
    k = res.iterations
    plain = minres(MatrixOperator(A), b, rtol=1e-12, maxiter=k)
    scale = radius / float(torch.linalg.vector_norm(plain.x))
    assert scale < 1 and torch.allclose(res.x, scale * plain.x, atol=1e-12)
    if k > 1:
        before = minres(MatrixOperator(A), b, rtol=1e-12, maxiter=k - 1)
        assert float(torch.linalg.vector_norm(before.x)) <= radius
    assert res.residual_norm < res.rhs_norm  # a scaled MINRES iterate still lowers ‖b − Ax‖
    far = minres(MatrixOperator(A), b, rtol=1e-12, max_norm=10 / max(fraction, 1e-3) * radius)
    assert far.status == full.status and torch.allclose(far.x, full.x, atol=1e-12)


def test_zero_rhs_is_solved_by_zero():
    res = minres(MatrixOperator(torch.eye(3, dtype=F64)), torch.zeros(3, dtype=F64))
    assert res.status == "converged" and res.iterations == 0 and not res.x.any()


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"rtol": 0.0}, "rtol"),
        ({"rtol": float("nan")}, "rtol"),
        ({"maxiter": 0}, "maxiter"),
        ({"shift": float("inf")}, "shift"),
        ({"max_norm": 0.0}, "max_norm"),
    ],
)
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        minres(MatrixOperator(torch.eye(3, dtype=F64)), torch.ones(3, dtype=F64), **kwargs)


def test_result_prints_and_serialises():
    res = minres(MatrixOperator(torch.eye(3, dtype=F64)), torch.ones(3, dtype=F64))
    assert "converged" in str(res) and res.to_dict()["status"] == "converged"
