"""Bad input gets a saddlescope error that names the problem and what to do."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from saddlescope import (
    HessianTooLargeError,
    InvalidInputError,
    NonFiniteError,
    Objective,
    SaddlescopeError,
    classify,
    find_critical_point,
    hessian_spectrum,
    toy,
)
from saddlescope.landscape import line

pytestmark = pytest.mark.bad_input

F64 = torch.float64


@pytest.fixture
def setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    return model, nn.MSELoss(), (torch.randn(10, 3), torch.randn(10, 1))


def test_all_errors_share_a_base_class():
    for cls in (InvalidInputError, NonFiniteError, HessianTooLargeError):
        assert issubclass(cls, SaddlescopeError)
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(HessianTooLargeError, MemoryError)


def test_non_scalar_loss(setup):
    model, _, data = setup
    with pytest.raises(InvalidInputError, match=r"scalar.*\(10, 1\).*reduction='mean'"):
        Objective(model, nn.MSELoss(reduction="none"), data)


def test_nan_theta_names_the_parameter(setup):
    obj = Objective(*setup, dtype=F64)
    theta = obj.theta0
    theta[-1] = math.nan  # last entry: the bias of the last layer
    with pytest.raises(NonFiniteError, match=r"'2\.bias'"):
        obj.loss(theta)
    with pytest.raises(NonFiniteError, match=r"'2\.bias'"):
        obj.grad(theta)


def test_infinite_loss_with_finite_theta(setup):
    model, _, data = setup

    def bad_loss(out, target):
        return torch.log(out.abs() * 0).mean()

    with pytest.raises(NonFiniteError, match=r"loss is -inf on the first batch"):
        Objective(model, bad_loss, data, dtype=F64)  # refused at the door

    def log_loss(out, target):  # finite at the model's weights, -inf where the outputs vanish
        return torch.log(out.abs()).mean()

    obj = Objective(model, log_loss, data, dtype=F64)
    with pytest.raises(NonFiniteError, match=r"loss is -inf.*although θ is finite"):
        obj.loss(torch.zeros(obj.num_params, dtype=F64))


def test_non_finite_gradient_names_the_parameter():
    obj = toy.scalar_objective(lambda w: torch.sqrt(w.abs()).sum(), [1.0, 0.0])
    with pytest.raises(NonFiniteError, match=r"gradient.*parameter 'w'"):
        obj.grad(obj.theta0)


def test_non_finite_data(setup):
    model, loss_fn, (x, y) = setup
    x[3, 1] = math.inf
    with pytest.raises(NonFiniteError, match="batch 0: inputs contain NaN or Inf"):
        Objective(model, loss_fn, (x, y))


def test_no_trainable_parameters(setup):
    model, loss_fn, data = setup
    model.requires_grad_(False)
    with pytest.raises(InvalidInputError, match=r"no trainable parameters.*requires_grad=True"):
        Objective(model, loss_fn, data)


@pytest.mark.parametrize("data", [[], (torch.empty(0, 3), torch.empty(0, 1))])
def test_empty_data(setup, data):
    model, loss_fn, _ = setup
    with pytest.raises(InvalidInputError, match="empty"):
        Objective(model, loss_fn, data)


def test_malformed_data(setup):
    model, loss_fn, (x, y) = setup
    with pytest.raises(InvalidInputError, match="pair"):
        Objective(model, loss_fn, 42)
    with pytest.raises(InvalidInputError, match=r"batch 1.*pair"):
        Objective(model, loss_fn, [(x, y), x])
    with pytest.raises(InvalidInputError, match="same leading"):
        Objective(model, loss_fn, (x, y[:4]))
    with pytest.raises(InvalidInputError, match=r"nn.Module"):
        Objective(lambda t: t, loss_fn, (x, y))


def test_theta_of_the_wrong_length(setup):
    obj = Objective(*setup)
    with pytest.raises(InvalidInputError, match=r"length 21.*shape \(5,\).*theta0"):
        obj.grad(torch.zeros(5))
    with pytest.raises(InvalidInputError, match="length 21"):
        classify(obj, torch.zeros(3, 7))
    with pytest.raises(InvalidInputError, match="cannot multiply"):
        obj.hessian_operator(obj.theta0) @ torch.zeros(4)
    with pytest.raises(InvalidInputError, match="direction"):
        line(obj, obj.theta0, torch.zeros(4), [0.0, 1.0])


def test_dense_hessian_over_budget(setup):
    obj = Objective(*setup, dtype=F64, memory_budget=1000)
    with pytest.raises(HessianTooLargeError, match=r"3,528 bytes.*hessian_spectrum.*Lanczos"):
        obj.hessian(obj.theta0)
    with pytest.raises(HessianTooLargeError):
        hessian_spectrum(obj, obj.theta0, method="dense")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"rtol": -1e-3}, "rtol"),
        ({"rtol": 2.0}, "rtol must be < 1"),
        ({"atol": math.nan}, "atol"),
        ({"grad_tol": 0.0}, "grad_tol"),
        ({"grad_tol": "small"}, "grad_tol must be a number"),
        ({"probe_radii": (0.1, -1.0)}, "probe radius"),
    ],
)
def test_bad_tolerances(kwargs, pattern):
    obj = toy.worked_example_objective()
    with pytest.raises(InvalidInputError, match=pattern):
        classify(obj, torch.zeros(2), **kwargs)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda o: find_critical_point(o, o.theta0, method="newton"), "unknown method 'newton'"),
        (lambda o: find_critical_point(o, o.theta0, grad_tol=-1), "grad_tol"),
        (lambda o: find_critical_point(o, o.theta0, max_steps=-2), "max_steps"),
        (lambda o: find_critical_point(o, o.theta0, armijo=0.7), "armijo"),
        (lambda o: hessian_spectrum(o, o.theta0, which="middle"), "unknown which 'middle'"),
        (lambda o: hessian_spectrum(o, o.theta0, method="arnoldi"), "unknown method"),
        (lambda o: hessian_spectrum(o, o.theta0, k=0), "k must be an integer ≥ 1"),
        (lambda o: hessian_spectrum(o, o.theta0, lanczos_bound="tight"), "unknown lanczos_bound"),
    ],
)
def test_unknown_options(call, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        call(toy.worked_example_objective())


def test_unknown_norm_stats_and_dtype(setup):
    with pytest.raises(InvalidInputError, match="unknown norm_stats 'train'"):
        Objective(*setup, norm_stats="train")
    with pytest.raises(InvalidInputError, match="floating-point dtype"):
        Objective(*setup, dtype=torch.int64)
    with pytest.raises(InvalidInputError, match="memory_budget"):
        Objective(*setup, memory_budget=0)


def test_a_model_that_fails_on_the_data_gets_a_clear_error(setup):
    model, loss_fn, (x, y) = setup
    with pytest.raises(InvalidInputError, match=r"fail on the first batch.*\(10, 5\)"):
        Objective(model, loss_fn, (torch.randn(10, 5), y))
    bn = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    with pytest.raises(InvalidInputError, match="more than one sample"):
        Objective(bn, loss_fn, [(x[:1], torch.randn(1, 2))], norm_stats="batch")


def test_objective_holds_its_own_copy_of_the_data_and_theta(setup):
    model, loss_fn, (x, y) = setup
    obj = Objective(model, loss_fn, (x, y))
    before = float(obj.loss(obj.theta0))
    x.mul_(10)  # the user edits their tensors afterwards
    assert float(obj.loss(obj.theta0)) == before
    theta = obj.theta0.requires_grad_(True)
    assert not obj.grad(theta).requires_grad


def test_weighted_loss_module_follows_the_objective_dtype():
    model = nn.Linear(3, 2)
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 1, 0])
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0]))
    obj = Objective(model, loss_fn, (x, y), dtype=F64)
    assert obj.loss(obj.theta0).dtype == F64
    assert loss_fn.weight.dtype == torch.float32  # the user's module is untouched


def test_bad_targets_anywhere_in_the_first_batch_fail_at_construction():
    x, y = torch.randn(16, 3), torch.zeros(16, dtype=torch.long)
    y[10] = 5  # out of range for 3 classes, past the first few samples
    with pytest.raises(InvalidInputError, match="out of bounds"):
        Objective(nn.Linear(3, 3), nn.CrossEntropyLoss(), (x, y))
