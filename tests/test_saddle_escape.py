"""SaddleEscape: leaving plateaus during training, and behaving as a torch.optim optimizer."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from conftest import assert_unchanged, classification_data, make_mlp, snapshot
from saddlescope import EscapeEvent, InvalidInputError, SaddleEscape, toy

F64 = torch.float64


def _train(model, loss_fn, data, opt, steps, target):
    for step in range(1, steps + 1):

        def closure():
            opt.zero_grad()
            loss = loss_fn(model(data[0]), data[1])
            loss.backward()
            return loss

        loss = opt.step(closure)
        if loss.item() < target:
            return step
    return None


def test_saddle_escape_leaves_the_worked_example_plateau_sooner():
    results = {}
    for wrapped in (False, True):
        model, loss_fn, data = toy.worked_example(1e-5, 1e-5)
        base = torch.optim.SGD(model.parameters(), lr=0.05)
        opt = SaddleEscape(base, model, loss_fn, data, window=5) if wrapped else base
        results[wrapped] = _train(model, loss_fn, data, opt, 2000, 1e-3)
        if wrapped:
            assert opt.events and opt.events[0].action == "escaped"
            assert opt.events[0].curvature == pytest.approx(-2.0, rel=1e-3)
    assert results[True] is not None and results[False] is not None
    assert results[True] < results[False] / 2


def deep_linear(seed=0, depth=3, width=4, scale=1e-2):
    torch.manual_seed(seed)
    layers = [nn.Linear(width, width, bias=False, dtype=F64) for _ in range(depth)]
    for layer in layers:
        nn.init.normal_(layer.weight, std=scale)
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(64, width, generator=g, dtype=F64)
    target = torch.randn(width, width, generator=g, dtype=F64)
    return nn.Sequential(*layers), nn.MSELoss(), (x, x @ target.T)


def test_saddle_escape_on_a_deep_linear_network_from_small_init():
    steps = {}
    for wrapped in (False, True):
        model, loss_fn, data = deep_linear()
        start = loss_fn(model(data[0]), data[1]).item()
        base = torch.optim.SGD(model.parameters(), lr=0.05)
        opt = (
            SaddleEscape(base, model, loss_fn, data, window=10, stall_grad_norm=1e-2)
            if wrapped
            else base
        )
        steps[wrapped] = _train(model, loss_fn, data, opt, 2000, 0.5 * start)
        if wrapped:
            assert opt.events[0].action == "escaped" and opt.events[0].curvature < 0
    assert steps[True] is not None and steps[False] is not None
    assert steps[True] < steps[False] / 2  # plain SGD needs ~500 steps on this plateau


def test_saddle_escape_is_transparent_when_not_stalled():
    model_a = make_mlp([3, 5, 2], "tanh", seed=2)
    model_b = copy.deepcopy(model_a)
    x, y = classification_data(20, 3, 2)
    loss_fn = nn.CrossEntropyLoss()
    plain = torch.optim.Adam(model_a.parameters(), lr=0.01)
    wrapped = SaddleEscape(
        torch.optim.Adam(model_b.parameters(), lr=0.01), model_b, loss_fn, (x, y)
    )
    _train(model_a, loss_fn, (x, y), plain, 50, -1.0)
    _train(model_b, loss_fn, (x, y), wrapped, 50, -1.0)
    assert wrapped.events == []
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(pa, pb)
    sched = torch.optim.lr_scheduler.StepLR(wrapped, step_size=1, gamma=0.5)
    _train(model_b, loss_fn, (x, y), wrapped, 1, -1.0)
    sched.step()
    assert wrapped.param_groups[0]["lr"] == pytest.approx(0.005)
    assert wrapped.state_dict()["param_groups"][0]["lr"] == pytest.approx(0.005)


def test_saddle_escape_rejects_a_mismatched_optimizer():
    model, loss_fn, data = toy.worked_example()
    other = nn.Linear(2, 2)
    with pytest.raises(InvalidInputError, match="every trainable parameter"):
        SaddleEscape(torch.optim.SGD(other.parameters(), lr=0.1), model, loss_fn, data)
    with pytest.raises(InvalidInputError, match="window"):
        SaddleEscape(torch.optim.SGD(model.parameters(), lr=0.1), model, loss_fn, data, window=0)


def test_saddle_escape_validates_its_options():
    model, loss_fn, data = toy.worked_example()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(InvalidInputError, match="stall_grad_norm"):
        SaddleEscape(sgd, model, loss_fn, data, stall_grad_norm=0.0)
    with pytest.raises(InvalidInputError, match="window"):
        SaddleEscape(sgd, model, loss_fn, data, window=True)
    with pytest.raises(InvalidInputError, match=r"base must be a torch\.optim\.Optimizer"):
        SaddleEscape(object(), model, loss_fn, data)
    with pytest.raises(TypeError, match="grad_tol"):  # the old name: ‖g‖ ≤ grad_tol is critical
        SaddleEscape(sgd, model, loss_fn, data, grad_tol=1e-3)


# --------------------------------------------------------------- the torch.optim contract
def _mlp_problem(seed=3):
    model = make_mlp([3, 5, 2], "tanh", seed=seed)
    x, y = classification_data(20, 3, 2)
    return model, nn.CrossEntropyLoss(), (x, y)


def _wrapped_adam(model, loss_fn, data, lr=0.01):
    return SaddleEscape(torch.optim.Adam(model.parameters(), lr=lr), model, loss_fn, data)


def test_saddle_escape_is_an_optimizer_sharing_the_base_state():
    model, loss_fn, data = _mlp_problem()
    base = torch.optim.Adam(model.parameters(), lr=0.01)
    groups = base.param_groups
    group_params = base.param_groups[0]["params"]
    opt = SaddleEscape(base, model, loss_fn, data)
    assert isinstance(opt, torch.optim.Optimizer)
    assert opt.param_groups is base.param_groups is groups
    assert base.param_groups[0]["params"] is group_params  # the base was not rewritten
    assert opt.state is base.state and opt.defaults is base.defaults
    _train(model, loss_fn, data, opt, 3, -1.0)
    assert len(opt.state) == len(list(model.parameters()))  # Adam's moments, seen through opt


def test_saddle_escape_construction_leaves_the_model_alone():
    model, loss_fn, data = _mlp_problem()
    before = snapshot(model)
    opt = _wrapped_adam(model, loss_fn, data)
    opt.state_dict()
    opt.zero_grad()
    assert_unchanged(model, before)


def test_saddle_escape_zero_grad():
    model, loss_fn, data = _mlp_problem()
    opt = _wrapped_adam(model, loss_fn, data)
    loss_fn(model(data[0]), data[1]).backward()
    assert all(p.grad is not None for p in model.parameters())
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_step_lr_schedules_the_base_optimizer_without_warnings():
    model, loss_fn, data = _mlp_problem()
    opt = _wrapped_adam(model, loss_fn, data, lr=0.08)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        for _ in range(5):
            _train(model, loss_fn, data, opt, 1, -1.0)
            sched.step()
            lrs.append(opt.base.param_groups[0]["lr"])
    assert lrs == pytest.approx([0.08, 0.04, 0.04, 0.02, 0.02])
    assert sched.get_last_lr() == pytest.approx([0.02])


def test_state_dict_round_trip_resumes_identically():
    model, loss_fn, data = _mlp_problem()
    opt = _wrapped_adam(model, loss_fn, data)
    _train(model, loss_fn, data, opt, 5, -1.0)
    saved = copy.deepcopy(opt.state_dict())
    assert saved["param_groups"] == opt.base.state_dict()["param_groups"]
    assert saved["state"].keys() == opt.base.state_dict()["state"].keys()
    resumed_model = copy.deepcopy(model)
    resumed = _wrapped_adam(resumed_model, loss_fn, data, lr=0.5)  # lr comes from the dict
    resumed.load_state_dict(saved)
    assert resumed.state is resumed.base.state and resumed.param_groups is resumed.base.param_groups
    assert resumed.base.param_groups[0]["lr"] == pytest.approx(0.01)
    for p, q in zip(model.parameters(), resumed_model.parameters()):
        assert torch.equal(opt.base.state[p]["exp_avg"], resumed.base.state[q]["exp_avg"])
    _train(model, loss_fn, data, opt, 5, -1.0)
    _train(resumed_model, loss_fn, data, resumed, 5, -1.0)
    for p, q in zip(model.parameters(), resumed_model.parameters()):
        assert torch.equal(p, q)
    # A dict written by the bare base optimizer loads too (the same format).
    other = _wrapped_adam(copy.deepcopy(model), loss_fn, data)
    other.load_state_dict(copy.deepcopy(opt.base.state_dict()))
    assert other.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_a_state_dict_loaded_into_the_base_directly_is_seen():
    model, loss_fn, data = _mlp_problem()
    opt = _wrapped_adam(model, loss_fn, data)
    _train(model, loss_fn, data, opt, 2, -1.0)
    saved = copy.deepcopy(opt.state_dict())
    fresh = _wrapped_adam(copy.deepcopy(model), loss_fn, data)
    fresh.base.load_state_dict(saved)
    assert fresh.state_dict()["state"].keys() == saved["state"].keys()


def test_hooks_registered_on_saddle_escape_run():
    model, loss_fn, data = _mlp_problem()
    opt = _wrapped_adam(model, loss_fn, data)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", o)))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", o)))
    opt.register_state_dict_post_hook(lambda o, sd: calls.append(("saved", o)))
    opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append(("loading", o)))
    opt.register_load_state_dict_post_hook(lambda o: calls.append(("loaded", o)))
    base_calls = []
    opt.base.register_step_post_hook(lambda o, args, kwargs: base_calls.append(o))
    _train(model, loss_fn, data, opt, 2, -1.0)
    assert calls == [("pre", opt), ("post", opt)] * 2 and base_calls == [opt.base] * 2
    calls.clear()
    opt.load_state_dict(opt.state_dict())
    assert calls == [("saved", opt), ("loading", opt), ("loaded", opt)]


def test_escape_events_print_and_serialise():
    model, loss_fn, data = toy.worked_example(1e-4, 0.0)
    opt = SaddleEscape(torch.optim.SGD(model.parameters(), lr=0.1), model, loss_fn, data, window=3)
    _train(model, loss_fn, data, opt, 10, -1.0)
    event = opt.events[0]
    assert isinstance(event, EscapeEvent) and event.to_dict()["action"] == "escaped"
    assert "escaped (λ = -2)" in str(event) and event.loss_after < event.loss_before
