"""Every public call leaves the user's model bit-for-bit as it was (Hypothesis over shapes)."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import assert_unchanged, make_cnn, make_mlp, snapshot
from saddlescope import Objective, classify, find_critical_point, hessian_spectrum
from saddlescope.landscape import line, plane

F64 = torch.float64


def exercise(model, loss_fn, data, norm_stats):
    obj = Objective(model, loss_fn, data, dtype=F64, norm_stats=norm_stats)
    theta = obj.theta0
    v = torch.ones_like(theta)
    obj.loss(theta)
    obj.grad(theta)
    obj.hvp(theta, v)
    obj.hessian(theta)
    obj.linear_operator(theta) @ v.numpy()
    obj.losses(torch.stack([theta, theta + 0.1]))
    hessian_spectrum(obj, theta)
    if obj.num_params > 8:
        hessian_spectrum(obj, theta, k=2, which="both")
    classify(obj, theta)
    find_critical_point(obj, theta, max_steps=2)
    find_critical_point(obj, theta, method="gradnorm", max_steps=2)
    line(obj, theta, v, [0.0, 0.5])
    plane(obj, theta, v, -v, [0.0, 0.5], [0.0, 0.5])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hidden=st.lists(st.integers(1, 5), min_size=0, max_size=2),
    activation=st.sampled_from(["tanh", "relu", "gelu"]),
    batchnorm=st.booleans(),
    dropout=st.sampled_from([0.0, 0.3]),
    training=st.booleans(),
    freeze_first=st.booleans(),
    dtype=st.sampled_from([torch.float32, F64]),
    norm_stats=st.sampled_from(["running", "batch"]),
    with_grads=st.booleans(),
)
def test_mlp_unchanged(
    hidden, activation, batchnorm, dropout, training, freeze_first, dtype, norm_stats, with_grads
):
    model = make_mlp([3, *hidden, 2], activation, batchnorm=batchnorm, dropout=dropout).to(dtype)
    model.train(training)
    x, y = torch.randn(8, 3, dtype=dtype), torch.randn(8, 2, dtype=dtype)
    if with_grads:
        torch.nn.functional.mse_loss(model(x), y).backward()
    if freeze_first and len(list(model.parameters())) > 1:
        model[0].weight.requires_grad_(False)
    if batchnorm:
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, torch.nn.BatchNorm1d):
                    m.running_mean.uniform_(-1, 1)
    before = snapshot(model)
    exercise(model, torch.nn.MSELoss(), [(x[:5], y[:5]), (x[5:], y[5:])], norm_stats)
    assert_unchanged(model, before)


def test_cnn_with_batchnorm_unchanged_in_train_mode():
    model = make_cnn().train()
    x, y = torch.randn(6, 1, 6, 6), torch.randint(0, 3, (6,))
    before = snapshot(model)
    for norm_stats in ("running", "batch"):
        exercise(model, torch.nn.CrossEntropyLoss(), (x, y), norm_stats)
    assert_unchanged(model, before)
    assert model.training and model.bn.num_batches_tracked.item() == 7
