"""The critical-point searches (saddlescope.search): Newton-MR, LM, gradnorm, flatness."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import classification_data, make_mlp
from saddlescope import Objective, classify, find_critical_point, toy
from saddlescope.survey import default_config
from saddlescope.survey.runner import objective_for

F64 = torch.float64


def field(f, w0=(0.0, 0.0)):
    return toy.scalar_objective(f, list(w0))


def test_gradient_flat_point_is_reported_as_such():
    # L = x² + y: g = (2x, 1) always has the component 1 in the null space of H = diag(2, 0).
    obj = field(lambda w: w[0] ** 2 + w[1], (0.3, 0.0))
    for method in ("newton-mr", "newton-tr", "gradnorm", "lm", "auto"):
        res = find_critical_point(obj, obj.theta0, method=method, max_steps=50)
        assert not res.converged and res.status == "gradient-flat", str(res)
        assert res.gradient_flat and res.flatness.share >= 0.5 and res.flatness.flat
        assert res.grad_norm >= 1.0
        if method in ("newton-mr", "newton-tr", "gradnorm"):
            assert abs(float(res.theta[1])) <= 10  # the step bound keeps θ from running off


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


def test_budgets_in_products_and_seconds_end_the_search_and_say_so():
    model = make_mlp([3, 6, 2], "tanh", seed=2)
    x, y = classification_data(25, 3, 2, seed=3)
    obj = Objective(
        model, torch.nn.MSELoss(), (x, torch.nn.functional.one_hot(y).double()), dtype=F64
    )
    res = find_critical_point(obj, obj.theta0, grad_tol=1e-12, max_hvps=40)
    assert res.status in {"max-hvps", "gradient-flat"} and res.hvps - res.flatness.hvps < 40 + 50
    assert res.history[-2].hvps < 40  # the step that crossed the budget was the last
    res = find_critical_point(obj, obj.theta0, grad_tol=1e-12, max_seconds=1e-9)
    assert res.status in {"max-seconds", "gradient-flat"} and res.steps == 0


def test_the_driver_finds_the_worked_examples_critical_points():
    obj = toy.worked_example_objective()
    grid = torch.linspace(-2, 2, 5, dtype=F64)
    for a in grid:
        for b in grid:
            res = find_critical_point(obj, torch.stack([a, b]), method="auto", grad_tol=1e-12)
            assert res.converged, str(res)
            w1, w2 = (float(t) for t in res.theta)
            assert abs(w1 * w2 - 1) < 1e-9 or (abs(w1) < 1e-9 and abs(w2) < 1e-9)
            assert res.phases[0][0] == "lm" and sum(k for _, k in res.phases) == res.steps


def test_the_driver_descends_where_the_point_is_minimum_like():
    # A run of the default study (6 tanh units, untrained): LM crawls for 300 steps; the driver
    # sees no resolvable negative curvature, descends on L, and converges to a minimum.
    spec = next(
        r for r in default_config().runs() if (r.seed, r.hidden, r.train_steps) == (1, (6,), 0)
    )
    obj = objective_for(spec)
    lm = find_critical_point(obj, obj.theta0, method="lm", grad_tol=1e-8, max_steps=300)
    assert not lm.converged
    res = find_critical_point(obj, obj.theta0, method="auto", grad_tol=1e-8, max_steps=300)
    assert res.converged and [m for m, _ in res.phases] == ["lm", "descent"], str(res)
    assert res.hvps < lm.hvps and "descent×" in str(res)
    cp = classify(obj, res.theta, loss_lower_bound=0.0)
    assert cp.kind == "minimum"


def test_the_driver_does_not_descend_from_a_saddle_region():
    # L = x² − y² + ...: a non-degenerate saddle at 0 is found as a saddle, not walked away from.
    obj = field(lambda w: w[0] ** 2 - w[1] ** 2 + 0.1 * w[1] ** 4, (0.3, 0.2))
    res = find_critical_point(obj, obj.theta0, method="auto", grad_tol=1e-12)
    assert res.converged and res.theta.abs().max() < 1e-10, str(res)
    assert "descent" not in dict(res.phases)


def _quadratic(seed, n=8):
    """L = ½θᵀAθ + bᵀθ with an indefinite A: g = Aθ + b is linear, so ½‖g + Hp‖² is exact."""
    gen = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=F64))
    A = Q @ torch.diag(torch.linspace(-3, 4, n, dtype=F64)) @ Q.T
    A = (A + A.T) / 2
    b = torch.randn(n, generator=gen, dtype=F64)
    obj = toy.scalar_objective(lambda w: 0.5 * w @ A @ w + b @ w, torch.randn(n, generator=gen))
    return obj, A


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("radius", [1e-3, 1e-1])
def test_trust_region_step_earns_at_least_the_cauchy_decrease(seed, radius):
    # The trust-region convergence guarantee: the step lowers ½‖g‖² at least as much as the best
    # step along the model's steepest descent −Hg within the radius (the Cauchy point).
    from saddlescope.search_steps import SearchOptions, SearchState, newton_tr_step

    obj, A = _quadratic(seed)
    theta = obj.theta0
    loss, g = obj.loss_and_grad(theta)
    s = SearchState(theta, loss, g, float(g @ g), radius=radius)
    o = SearchOptions(1e-12, 1e-12, 0.0, 50, 1e-4, 1e-12, 1e3, float(g.norm()))
    new = newton_tr_step(obj, s, o)
    assert new is not None
    assert float(torch.linalg.vector_norm(new.theta - theta)) <= radius * (1 + 1e-12)
    Hg = A @ g
    HHg = A @ Hg
    tau = min(radius / float(Hg.norm()), float(Hg @ Hg) / float(HHg @ HHg))
    cauchy = float((g - tau * HHg).pow(2).sum())
    assert new.sq <= cauchy * (1 + 1e-12)
    assert new.radius >= radius  # an exact model: ρ = 1, the radius never shrinks


def test_trust_region_radius_shrinks_after_a_poor_step_and_is_remembered():
    # L = log cosh x + y²: from x = 1.5 the Newton step on g = tanh x lands at x ≈ −3.5, where
    # |g| is larger: rejected, and the radius cut to a quarter of that step. The step to the new
    # boundary does better than its model promised (ρ > ¾), so the radius doubles, and is kept.
    from saddlescope.search_steps import SearchOptions, SearchState, newton_tr_step

    obj = field(lambda w: torch.log(torch.cosh(w[0])) + w[1] ** 2, (1.5, 0.0))
    loss, g = obj.loss_and_grad(obj.theta0)
    s = SearchState(obj.theta0, loss, g, float(g @ g), radius=100.0)
    o = SearchOptions(1e-12, 1e-12, 0.0, 10, 1e-4, 1e-12, 100.0, float(g.norm()))
    newton = 1.5 - math.sinh(1.5) * math.cosh(1.5)  # where the full Newton step would land
    new = newton_tr_step(obj, s, o)
    assert new is not None and new.sq < s.sq
    quarter = 0.25 * (1.5 - newton)
    assert float(new.theta[0]) == pytest.approx(1.5 - quarter, rel=1e-9)
    assert new.radius == pytest.approx(2 * quarter, rel=1e-9) and s.radius == new.radius
