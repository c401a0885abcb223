"""The critical-point searches (saddlescope.search): Newton-MR, LM, gradnorm, flatness."""

from __future__ import annotations

import pytest
import torch

from conftest import classification_data, make_mlp
from saddlescope import (
    Objective,
    classify,
    find_critical_point,
    gradient_flatness,
    toy,
)

F64 = torch.float64


def field(f, w0=(0.0, 0.0)):
    return toy.scalar_objective(f, list(w0))


def test_gradient_flat_point_is_reported_as_such():
    # L = x² + y: g = (2x, 1) always has the component 1 in the null space of H = diag(2, 0).
    obj = field(lambda w: w[0] ** 2 + w[1], (0.3, 0.0))
    for method in ("newton-mr", "gradnorm"):
        res = find_critical_point(obj, obj.theta0, method=method, max_steps=50)
        assert not res.converged and res.status == "gradient-flat", str(res)
        assert res.gradient_flat and res.flatness >= 0.5
        assert res.grad_norm >= 1.0
        assert abs(float(res.theta[1])) <= 10  # the step bound keeps θ from running off
    flat, used = gradient_flatness(obj, torch.tensor([0.0, 0.0], dtype=F64))
    assert flat == pytest.approx(1.0) and used > 0
    sharp, _ = gradient_flatness(field(lambda w: w[0] ** 2 + w[1] ** 2), torch.tensor([0.3, 0.2]))
    assert sharp < 1e-8


def test_newton_mr_finds_a_critical_point_of_an_mlp():
    model = make_mlp([3, 6, 2], "tanh", seed=2)
    x, y = classification_data(25, 3, 2, seed=3)
    obj = Objective(
        model, torch.nn.MSELoss(), (x, torch.nn.functional.one_hot(y).double()), dtype=F64
    )
    res = find_critical_point(obj, obj.theta0, grad_tol=1e-9)
    assert res.converged and res.grad_norm <= 1e-9
    cp = classify(obj, res.theta)
    assert cp.kind in {"minimum", "saddle", "degenerate"}
    assert cp.grad_norm == pytest.approx(res.grad_norm, rel=1e-6, abs=1e-12)
    assert cp.inertia.n_pos + cp.inertia.n_neg + cp.inertia.n_zero == obj.num_params


def test_max_steps_zero_reports_without_moving():
    obj = toy.worked_example_objective()
    res = find_critical_point(obj, torch.tensor([0.5, -0.3], dtype=F64), max_steps=0)
    assert res.steps == 0 and not res.converged and res.status in {"max-steps", "gradient-flat"}
    assert torch.equal(res.theta, torch.tensor([0.5, -0.3], dtype=F64))
