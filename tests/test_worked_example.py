"""The worked example of MISSION §3–4, exactly, in float64."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from saddlescope import classify, find_critical_point, hessian_spectrum, toy

F64 = torch.float64
finite = st.floats(-3, 3, allow_nan=False)


@pytest.fixture(scope="module")
def obj():
    return toy.worked_example_objective()


@settings(max_examples=40, deadline=None)
@given(w1=finite, w2=finite)
def test_objective_matches_closed_forms(w1, w2):
    obj = toy.worked_example_objective()
    w = torch.tensor([w1, w2], dtype=F64)
    scale = 1 + float(w.abs().max()) ** 4
    assert abs(float(obj.loss(w) - toy.worked_example_loss(w))) <= 1e-12 * scale
    assert torch.allclose(obj.grad(w), toy.worked_example_grad(w), rtol=0, atol=1e-12 * scale)
    assert torch.allclose(obj.hessian(w), toy.worked_example_hessian(w), rtol=0, atol=1e-12 * scale)


def test_origin_is_a_saddle(obj):
    zero = torch.zeros(2, dtype=F64)
    H = obj.hessian(zero)
    assert torch.allclose(
        H, torch.tensor([[0.0, -2.0], [-2.0, 0.0]], dtype=F64), atol=1e-12, rtol=0
    )
    cp = classify(obj, zero)
    assert torch.allclose(cp.spectrum.eigenvalues, torch.tensor([-2.0, 2.0], dtype=F64), atol=1e-12)
    assert cp.kind == "saddle" and cp.strict is True
    assert (cp.inertia.n_pos, cp.inertia.n_neg, cp.inertia.n_zero) == (1, 1, 0)
    assert cp.index == 0.5 and cp.minimum_ratio == 0.5
    assert cp.loss == 1.0 and cp.grad_norm == 0.0
    u = cp.escape_direction
    assert torch.allclose(
        u.abs(), torch.full((2,), 1 / math.sqrt(2), dtype=F64), atol=1e-12, rtol=0
    )
    assert float(u[0] * u[1]) > 0  # ±(1, 1)/√2, not (1, −1)/√2
    assert cp.escape_curvature == pytest.approx(-2.0, abs=1e-12)
    assert cp.predicted_decrease(0.1) == pytest.approx(-0.01, abs=1e-15)


@pytest.mark.parametrize("t", [0.25, 0.7, 1.0, 2.0, -1.0, -3.0])
@pytest.mark.parametrize("use_bound", [True, False])
def test_hyperbola_points_are_non_strict_minima(obj, t, use_bound):
    w = torch.tensor([t, 1 / t], dtype=F64)
    cp = classify(obj, w, loss_lower_bound=0.0 if use_bound else None)
    lam = cp.spectrum.eigenvalues
    big = 2 * (t**2 + 1 / t**2)
    assert abs(float(lam[0])) <= 1e-12 * big
    assert float(lam[1]) == pytest.approx(big, rel=1e-12)
    assert cp.kind == "minimum" and cp.strict is False
    assert (cp.inertia.n_pos, cp.inertia.n_neg, cp.inertia.n_zero) == (1, 0, 1)
    assert cp.index == 0.0 and cp.minimum_ratio == 0.5
    assert cp.escape_direction is None
    if not use_bound:  # settled by probing: the loss rises quartically on both sides
        assert cp.probes and all(p.verdict != "fall" for p in cp.probes)


def test_escape_step_lowers_the_loss_as_predicted(obj):
    cp = classify(obj, torch.zeros(2, dtype=F64))
    for t in (1e-3, 1e-2, 0.1):
        actual = float(obj.loss(cp.theta + t * cp.escape_direction)) - cp.loss
        # L(t·(1,1)/√2) − 1 = −t² + t⁴/4 exactly; the prediction −t² is off by t⁴/4.
        assert actual == pytest.approx(-(t**2) + t**4 / 4, abs=1e-15)
        assert actual - cp.predicted_decrease(t) == pytest.approx(t**4 / 4, abs=1e-15)
    # A step of √2 lands on the minimum w1 = w2 = ±1.
    end = cp.theta + math.sqrt(2) * cp.escape_direction
    assert float(obj.loss(end)) < 1e-28


starts = [(-1.7, 0.35), (0.9, 1.3), (1.9, -0.8), (-0.3, -0.2), (0.4, 2.1), (-1.2, -1.6), (2.5, 0.1)]


@pytest.mark.parametrize("method", ["newton-mr", "newton-tr", "gradnorm"])
@pytest.mark.parametrize("start", starts)
def test_search_lands_on_a_critical_point(obj, method, start):
    res = find_critical_point(obj, torch.tensor(start, dtype=F64), method=method, grad_tol=1e-10)
    assert res.converged and res.status == "converged"
    assert res.grad_norm < 1e-10
    assert float(torch.linalg.vector_norm(toy.worked_example_grad(res.theta))) < 1e-10
    w1, w2 = res.theta.tolist()
    on_origin = math.hypot(w1, w2) < 1e-9
    on_hyperbola = abs(w1 * w2 - 1) < 1e-9
    assert on_origin or on_hyperbola
    assert res.hvps > 0 and res.steps == len(res.history) - 1


def test_newton_mr_needs_fewer_hvps_than_gradnorm_on_average(obj):
    hvps = {
        m: sum(find_critical_point(obj, torch.tensor(s, dtype=F64), method=m).hvps for s in starts)
        for m in ("newton-mr", "gradnorm")
    }
    assert hvps["newton-mr"] < hvps["gradnorm"]


def test_lanczos_path_agrees_on_the_example(obj):
    # n = 2 is too small for ARPACK: the spectrum falls back to dense and still selects k per end.
    spec = hessian_spectrum(obj, torch.zeros(2, dtype=F64), k=1, which="smallest")
    assert spec.eigenvalues.tolist() == pytest.approx([-2.0], abs=1e-12)
