"""Restriction to an affine subspace (saddlescope.lifting.subspace): z ↦ L(θ0 + B·z)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from conftest import assert_unchanged, data_for, snapshot
from saddlescope import InvalidInputError, Objective, classify, find_critical_point, toy
from saddlescope.data import load_dataset
from saddlescope.lifting import restrict
from saddlescope.models import mlp

F64 = torch.float64


def test_worked_example_origin_is_a_minimum_on_a_line_and_a_saddle_in_the_plane():
    obj = toy.worked_example_objective()
    origin = torch.zeros(2, dtype=F64)
    full = classify(obj, origin)
    assert full.kind == "saddle" and (full.inertia.n_neg, full.inertia.n_pos) == (1, 1)

    d = torch.tensor([1.0, -1.0], dtype=F64) / math.sqrt(2)
    line = restrict(obj, origin, d)  # a vector is one direction
    assert line.num_params == 1 and torch.equal(line.theta0, torch.zeros(1, dtype=F64))
    cp = classify(line, line.theta0)
    assert cp.kind == "minimum" and cp.strict and cp.inertia.n_pos == 1
    for t in (-1.3, 0.4, 2.0):  # L(t·(1, −1)/√2) = (1 + t²/2)²
        z = torch.tensor([t], dtype=F64)
        assert float(line.loss(z)) == pytest.approx((1 + t * t / 2) ** 2, rel=1e-14)
    # The other diagonal is the way out: there the origin is a maximum of the restriction.
    down = restrict(obj, origin, torch.tensor([[1.0], [1.0]], dtype=F64) / math.sqrt(2))
    assert classify(down, down.theta0).kind == "maximum"


def test_restriction_has_projected_gradient_and_hessian():
    model = mlp(3, [4, 3], 2, seed=1)
    obj = Objective(model, nn.MSELoss(), data_for(3, 2))
    g = torch.Generator().manual_seed(5)
    theta0 = obj.theta0 + 0.1 * torch.randn(obj.num_params, generator=g, dtype=F64)
    B = torch.randn(obj.num_params, 3, generator=g, dtype=F64)
    sub = restrict(obj, theta0, B)
    z = torch.tensor([0.2, -0.1, 0.05], dtype=F64)
    theta = theta0 + B @ z
    assert sub.num_params == 3
    assert float(sub.loss(z)) == pytest.approx(float(obj.loss(theta)), rel=1e-13)
    assert torch.allclose(sub.grad(z), B.mT @ obj.grad(theta), rtol=1e-11, atol=1e-13)
    assert torch.allclose(sub.hessian(z), B.mT @ obj.hessian(theta) @ B, rtol=1e-10, atol=1e-12)
    assert sub.describe()["num_samples"] == obj.num_samples


def test_a_saddle_from_the_search_is_a_minimum_on_its_positive_eigenspace():
    data = load_dataset("teacher-student", n_samples=30, d_in=2, teacher_hidden=4, noise=0.1)
    obj = Objective(mlp(2, [3], 1, seed=3), nn.MSELoss(), (data.inputs, data.targets))
    search = find_critical_point(obj, obj.theta0, method="newton-mr")
    assert search.converged
    cp = classify(obj, search.theta)
    assert cp.kind == "saddle" and cp.inertia.n_neg >= 1
    spec = cp.spectrum
    positive = spec.eigenvectors[:, spec.eigenvalues > spec.threshold]
    sub = restrict(obj, cp.theta, positive)
    low = classify(sub, sub.theta0)
    assert low.kind == "minimum" and low.strict and low.inertia.n_pos == positive.shape[1]
    # ... and the full space has the way out that the subspace hides.
    assert float(obj.loss(cp.theta + 0.05 * cp.escape_direction)) < cp.loss


def test_restriction_leaves_the_objective_and_model_alone():
    model = mlp(2, [3], 1, seed=0)
    before = snapshot(model)
    obj = Objective(model, nn.MSELoss(), data_for(2, 1))
    loss0 = float(obj.loss(obj.theta0))
    sub = restrict(obj, obj.theta0, torch.eye(obj.num_params, dtype=F64)[:, :2])
    sub.hessian(sub.theta0 + 0.3)
    classify(sub, sub.theta0)
    assert float(obj.loss(obj.theta0)) == loss0
    assert torch.equal(obj.theta0, Objective(model, nn.MSELoss(), data_for(2, 1)).theta0)
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    "basis",
    [
        torch.zeros(5, 2),  # wrong number of rows
        torch.zeros(13),  # a vector of the wrong length
        torch.zeros(2, 4, 1),  # 3-D
        torch.zeros(4, 0),  # no directions
        torch.full((4, 1), float("nan")),
        torch.zeros(4, 1, dtype=torch.complex128),
    ],
)
def test_restrict_rejects_a_bad_basis(basis):
    obj = Objective(nn.Linear(3, 1).double(), nn.MSELoss(), data_for(3, 1))  # 4 parameters
    with pytest.raises(InvalidInputError, match="basis"):
        restrict(obj, torch.zeros(4), basis)


def test_restrict_rejects_a_bad_theta0():
    obj = toy.worked_example_objective()
    with pytest.raises(InvalidInputError, match="theta0"):
        restrict(obj, torch.zeros(3), torch.ones(2, 1))
