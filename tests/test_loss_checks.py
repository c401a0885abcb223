"""The loss and the arguments checked at the door (saddlescope.loss_checks, saddlescope.checks)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import classification_data, make_mlp
from saddlescope import InvalidInputError, NonFiniteError, Objective

pytestmark = pytest.mark.bad_input

F64 = torch.float64


def _reg():
    torch.manual_seed(0)
    x = torch.randn(16, 3, dtype=F64)
    return nn.Linear(3, 1).double(), x, x.sum(1, keepdim=True)


def test_a_summed_loss_is_refused_and_says_why():
    model, (x, y) = make_mlp([4, 6, 3], "tanh"), classification_data(16, 4, 3)
    with pytest.raises(InvalidInputError, match=r"not a per-sample mean.*sum over the batch"):
        Objective(model, nn.CrossEntropyLoss(reduction="sum"), (x, y))


def test_a_coupled_loss_is_refused_unless_declared():
    model, (x, y) = make_mlp([4, 6, 3], "tanh"), classification_data(16, 4, 3)

    def centred(out, target):  # compares a batch's samples: legitimately not per sample
        return ((out - out.mean(0)) ** 2).mean()

    with pytest.raises(InvalidInputError, match="per_sample_mean=False"):
        Objective(model, centred, (x, y))
    assert Objective(model, centred, (x, y), per_sample_mean=False).num_params == 51


def test_mean_losses_pass_however_they_are_weighted():
    model, (x, y) = make_mlp([4, 6, 3], "tanh"), classification_data(16, 4, 3)
    Objective(model, nn.CrossEntropyLoss(), (x, y))
    Objective(model, nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 5.0])), (x, y))
    Objective(model, nn.CrossEntropyLoss(), [(x, y)], batch_weight=lambda b: 2.0 * len(b[1]))


@pytest.mark.parametrize("bad_y", ["flat", "wide"])
def test_elementwise_losses_need_outputs_and_targets_of_one_shape(bad_y):
    model, x, y = _reg()
    y = y[:, 0] if bad_y == "flat" else y.repeat(1, 2)
    with pytest.raises(InvalidInputError, match=r"MSELoss got outputs of shape \(16, 1\)"):
        Objective(model, nn.MSELoss(), (x, y))


def test_a_non_finite_loss_at_the_models_weights_is_refused():
    model, x, y = _reg()
    with pytest.raises(NonFiniteError, match="loss is nan on the first batch"):
        Objective(model, lambda out, t: (out * float("nan")).mean(), (x, y))


@pytest.mark.parametrize(
    ("dtype", "want"), [("float64", F64), ("torch.float32", torch.float32), ("double", F64)]
)
def test_dtype_names_are_understood(dtype, want):
    model, x, y = _reg()
    assert Objective(model, nn.MSELoss(), (x, y), dtype=dtype).dtype == want


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"dtype": "float128"}, "not a floating-point dtype name"),
        ({"dtype": torch.int64}, "floating-point dtype"),
        ({"device": "gpu"}, "not a device torch knows"),
        ({"device": "meta"}, "holds no values"),
        ({"device": "cuda:7"}, "CUDA"),
        ({"loss_fn": 3}, r"loss_fn must be callable"),
        ({"batch_weight": "tokens"}, r"batch_weight must be callable as batch_weight\(batch\)"),
    ],
)
def test_bad_arguments_get_clear_errors(kw, match):
    model, x, y = _reg()
    args = {"loss_fn": nn.MSELoss(), **kw}
    loss_fn = args.pop("loss_fn")
    with pytest.raises(InvalidInputError, match=match):
        Objective(model, loss_fn, (x, y), **args)


@pytest.mark.parametrize("rows", [[["a", "b"]], torch.zeros(3), torch.zeros(2, 5)])
def test_losses_refuse_what_is_not_a_block_of_parameter_vectors(rows):
    model, x, y = _reg()
    obj = Objective(model, nn.MSELoss(), (x, y))
    with pytest.raises(InvalidInputError, match="thetas must be an"):
        obj.losses(rows)
