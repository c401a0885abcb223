"""Gradient flatness (saddlescope.flatness): the share of g in the zero band, vs dense truth."""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from conftest import classification_data, make_mlp
from saddlescope import Objective, Tolerance, find_critical_point, gradient_flatness, toy

F64 = torch.float64


def field(f, w0):
    return toy.scalar_objective(f, list(w0))


def independent_share(model, x, y, theta, rtol):
    """‖P₀g‖/‖g‖ from autograd's dense Hessian of a loss built here, not by saddlescope."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]

    def loss(flat):
        parts, i = {}, 0
        for name, shape in zip(names, shapes):
            k = shape.numel()
            parts[name] = flat[i : i + k].reshape(shape)
            i += k
        return torch.nn.functional.mse_loss(functional_call(model, parts, (x,)), y)

    g = torch.autograd.functional.jacobian(loss, theta)
    H = torch.autograd.functional.hessian(loss, theta)
    lam, U = torch.linalg.eigh(H)
    tau = Tolerance.resolve(F64, rtol=rtol).threshold(float(lam.abs().max()))
    c = U.T @ g
    return float(c[lam.abs() <= tau].norm() / g.norm()), float((H @ g).norm() / g.norm())


@pytest.fixture(scope="module")
def stalled_mlp():
    """A small tanh MLP where a short search left a non-critical θ, with its data."""
    model = make_mlp([3, 4, 2], "tanh", seed=5).double()
    x, y = classification_data(20, 3, 2, seed=6)
    x, target = x.double(), torch.nn.functional.one_hot(y).double()
    obj = Objective(model, torch.nn.MSELoss(), (x, target), dtype=F64)
    res = find_critical_point(obj, obj.theta0, method="gradnorm", max_steps=30)
    return model, x, target, obj, res.theta


@pytest.mark.parametrize("rtol", [1e-6, 1e-2, 0.3])
def test_dense_share_equals_an_independent_dense_computation(stalled_mlp, rtol):
    model, x, target, obj, theta = stalled_mlp
    flat = gradient_flatness(obj, theta, rtol=rtol, method="dense")
    share, hg = independent_share(model, x, target, theta, rtol)
    assert flat.method == "dense" and flat.share_bounds == (flat.share, flat.share)
    assert flat.share == pytest.approx(share, abs=1e-10)
    assert flat.hg_ratio == pytest.approx(hg, rel=1e-8)
    assert flat.status == ("flat" if share >= 0.5 else "not-flat")


@pytest.mark.parametrize("rtol", [1e-6, 1e-2, 0.3])
def test_lanczos_bounds_hold_the_dense_share(stalled_mlp, rtol):
    *_, obj, theta = stalled_mlp
    exact = gradient_flatness(obj, theta, rtol=rtol, method="dense")
    est = gradient_flatness(obj, theta, rtol=rtol, method="lanczos")
    lo, hi = est.share_bounds
    assert lo - 1e-8 <= exact.share <= hi + 1e-8
    assert est.hg_ratio == pytest.approx(exact.hg_ratio, rel=1e-8)
    assert est.threshold == pytest.approx(exact.threshold, rel=1e-6)
    assert est.status in (exact.status, "unknown")


def test_a_gradient_flat_point_by_hand():
    # L = x² + y at (0.3, 0): g = (0.6, 1), H = diag(2, 0); the zero band holds the y axis.
    obj = field(lambda w: w[0] ** 2 + w[1], (0.3, 0.0))
    flat = gradient_flatness(obj, obj.theta0)
    assert flat.status == "flat" and flat.flat
    assert flat.share == pytest.approx(1 / 1.36**0.5, rel=1e-12)
    assert flat.hg_ratio == pytest.approx(1.2 / 1.36**0.5, rel=1e-12)
    assert flat.threshold == pytest.approx(2e-6)
    assert gradient_flatness(obj, obj.theta0, flat_tol=0.9).status == "not-flat"


def test_a_sharp_point_is_not_flat_and_a_critical_one_is_not_measured():
    obj = field(lambda w: w[0] ** 2 + w[1] ** 2, (0.3, 0.2))
    sharp = gradient_flatness(obj, obj.theta0)
    assert sharp.status == "not-flat" and sharp.share == pytest.approx(0.0, abs=1e-12)
    crit = gradient_flatness(obj, torch.zeros(2, dtype=F64))
    assert crit.status == "critical" and crit.share is None and crit.hvps == 0


def test_unfinished_lanczos_is_unknown_never_flat():
    # g has weight on eigenvalues 0 and on 1..10: one Lanczos step cannot tell them apart.
    lam = torch.cat([torch.zeros(3), torch.linspace(1, 10, 9)]).to(F64)
    b = torch.ones(12, dtype=F64)
    obj = field(lambda w: 0.5 * (lam * w * w).sum() + b @ w, [0.0] * 12)
    est = gradient_flatness(obj, obj.theta0, method="lanczos", max_steps=1, flat_tol=0.4)
    assert est.status == "unknown" and est.share_bounds[0] < 0.4 <= est.share_bounds[1]
    full = gradient_flatness(obj, obj.theta0, method="lanczos")
    assert full.share == pytest.approx(0.5, abs=1e-6)  # 3 of 12 unit weights: √(3/12)


def test_the_search_reports_the_same_flatness_as_afterwards():
    obj = field(lambda w: w[0] ** 2 + w[1], (0.3, 0.0))
    res = find_critical_point(obj, obj.theta0, max_steps=20)
    assert res.status == "gradient-flat" and res.flatness is not None
    after = gradient_flatness(obj, res.theta)
    assert res.flatness.share == pytest.approx(after.share, rel=1e-12)
    assert res.flatness.threshold == after.threshold
    assert "zero band" in str(res.flatness) and res.flatness.to_dict()["status"] == "flat"
