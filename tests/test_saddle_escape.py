"""SaddleEscape: leaving plateaus during training, and behaving as a torch.optim optimizer."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

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


# ------------------------------------------------------- the objective's options: BatchNorm
def _train_mode_loss(model, loss_fn, x, y):
    """The loss training minimises: the model in train mode (batch statistics), in plain torch."""
    m = copy.deepcopy(model).train()
    with torch.no_grad():
        return loss_fn(m(x), y).item()


def _bn_problem(seed=0):
    model = make_mlp([3, 6, 3], "tanh", batchnorm=True, seed=seed).double()
    x, y = classification_data(32, 3, 3, seed=seed)
    return model, nn.CrossEntropyLoss(), ((3 * x + 2).double(), y)  # batch stats ≠ running


def _check_now(model, loss_fn, data, **kw):
    """A SaddleEscape whose first step checks the curvature (SGD lr 0: only the escape moves)."""
    base = torch.optim.SGD(model.parameters(), lr=0.0)
    return SaddleEscape(
        base, model, loss_fn, data, window=1, stall_grad_norm=1e3, loss_tol=1e3, **kw
    )


def _closure(opt, model, loss_fn, x, y):
    def closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    return closure


def test_with_batchnorm_the_default_escape_lowers_the_training_loss():
    for seed in (0, 1):
        model, loss_fn, (x, y) = _bn_problem(seed)
        opt = _check_now(model, loss_fn, (x, y))  # norm_stats="batch", the default
        before = _train_mode_loss(model, loss_fn, x, y)
        opt.step(_closure(opt, model, loss_fn, x, y))
        event = opt.events[0]
        assert event.action == "escaped" and event.curvature < 0
        assert event.loss_before == pytest.approx(before, rel=1e-12)  # it is the training loss
        after = _train_mode_loss(model, loss_fn, x, y)
        assert after == pytest.approx(event.loss_after, rel=1e-12) and after < before
        assert model.training  # still in train mode


def test_with_running_statistics_an_escape_can_raise_the_training_loss():
    # The contrast that makes "batch" the default: the eval-mode objective's way down (which
    # it does lower) raised the training loss here, as reported in issue 12.
    model, loss_fn, (x, y) = _bn_problem(0)
    opt = _check_now(model, loss_fn, (x, y), norm_stats="running")
    before = _train_mode_loss(model, loss_fn, x, y)
    opt.step(_closure(opt, model, loss_fn, x, y))
    event = opt.events[0]
    assert event.action == "escaped" and event.loss_after < event.loss_before
    assert event.loss_before != pytest.approx(before, rel=1e-3)  # not the training loss
    assert _train_mode_loss(model, loss_fn, x, y) > before


def test_running_statistics_are_the_current_models():
    model, loss_fn, (x, y) = _bn_problem(1)
    opt = _check_now(model, loss_fn, (x, y), norm_stats="running")

    def eval_loss():
        with torch.no_grad():
            return loss_fn(copy.deepcopy(model).eval()(x), y).item()

    at_start = eval_loss()
    with torch.no_grad():
        for _ in range(5):  # the user's training forwards move the running statistics
            model(x)
    now = eval_loss()
    assert now != pytest.approx(at_start, rel=1e-3)
    opt.zero_grad()
    loss_fn(model.eval()(x), y).backward()
    model.train()
    opt.step()
    assert opt.events[0].loss_before == pytest.approx(now, rel=1e-12)


def test_an_escape_changes_only_theta_and_reuses_one_objective():
    model, loss_fn, (x, y) = _bn_problem(0)
    model[0].bias.requires_grad_(False)  # frozen: not in θ, must stay
    model.register_forward_hook(lambda m, i, o: None)
    opt = _check_now(model, loss_fn, (x, y), param_filter=[model[0], model[3]])
    obj = opt.objective
    theta_names = {"0.weight", "3.weight", "3.bias"}
    assert set(obj.param_names) == theta_names
    opt.zero_grad()
    loss_fn(model(x), y).backward()
    model[1].eval()  # a submodule's mode must stay as the user left it
    hooks = (dict(model._forward_hooks), dict(model._forward_pre_hooks))
    before = snapshot(model)
    for _ in range(3):
        opt.step()  # no closure: SGD(lr=0) moves nothing, the escape only θ
    assert opt.events[0].action == "escaped" and len(opt.events) == 3
    assert opt.objective is obj  # one objective for every check
    moved = {
        k for k, v in snapshot(model)["state"].items() if not torch.equal(v, before["state"][k])
    }
    assert moved and moved <= theta_names
    for k in theta_names:  # put θ back: then nothing else may differ
        model.get_parameter(k).data.copy_(before["state"][k])
    assert_unchanged(model, before)
    assert (dict(model._forward_hooks), dict(model._forward_pre_hooks)) == hooks


def test_dtype_runs_the_check_in_float64_and_writes_back_in_float32():
    model, loss_fn, (x, y) = deep_linear()
    model, data = model.float(), (x.float(), y.float())
    opt = _check_now(model, loss_fn, data, dtype=F64)
    opt.step(_closure(opt, model, loss_fn, *data))
    assert opt.objective.dtype == F64 and opt.events[0].action == "escaped"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    after = loss_fn(model(data[0]), data[1]).item()
    assert after == pytest.approx(opt.events[0].loss_after, rel=1e-5)


# ------------------------------------------------------------------------------------ the data
def _worked_batches():
    x = torch.ones(4, 1, dtype=F64)
    return [(x[:2], torch.ones(2, 1, dtype=F64)), (x[2:], torch.ones(2, 1, dtype=F64))]


def test_generator_data_is_held_once_and_serves_every_check():
    model, loss_fn, _ = toy.worked_example(1e-3, 0.0)
    model, batches = model.double(), _worked_batches()
    opt = _check_now(model, loss_fn, (b for b in batches))
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    for _ in range(3):  # three checks, each on the data read once at construction
        expected = loss_fn(model(x), y).item()
        opt.step(_closure(opt, model, loss_fn, x, y))
        assert opt.events[-1].loss_before == pytest.approx(expected, rel=1e-12)
    assert len(opt.events) == 3 and opt.events[0].action == "escaped"
    assert opt.objective.num_samples == 4


def test_dataloader_and_dict_batches():
    model, loss_fn, (x, y) = deep_linear()
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    opt = _check_now(model, loss_fn, loader)
    opt.step(_closure(opt, model, loss_fn, x, y))
    assert opt.events[0].action == "escaped" and opt.objective.num_batches == 4

    class DictModel(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, y=None):
            return self.inner(x)

    model, loss_fn, (x, y) = deep_linear()
    wrapped = DictModel(model)
    dicts = [{"x": x[:32], "y": y[:32]}, {"x": x[32:], "y": y[32:]}]
    opt = _check_now(wrapped, lambda out, b: loss_fn(out, b["y"]), dicts)
    expected = loss_fn(model(x), y).item()
    opt.step(_closure(opt, wrapped, loss_fn, x, y))
    assert opt.events[0].action == "escaped"
    assert opt.events[0].loss_before == pytest.approx(expected, rel=1e-12)


def test_changed_data_reaches_the_objective_and_unchanged_data_is_not_reread():
    model, loss_fn, (x, y) = deep_linear()
    batches = [(x[:32], y[:32]), (x[32:], y[32:])]
    opt = _check_now(model, loss_fn, batches)
    held = opt.objective.data
    opt.step(_closure(opt, model, loss_fn, x, y))
    assert opt.objective.data is held  # the same data: nothing loaded again
    batches[1] = (x[32:], 2 * y[32:])  # the user's data changes
    expected = loss_fn(model(x), torch.cat([y[:32], 2 * y[32:]])).item()
    opt.step(_closure(opt, model, loss_fn, x, y))
    assert opt.objective.data is not held
    assert opt.events[1].loss_before == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------- the stall test, closure or not
def _steps_without_closure(model, loss_fn, data, opt, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(data[0]), data[1]).backward()
        opt.step()


def test_without_a_closure_training_that_is_not_stalled_is_left_alone():
    model_a, loss_fn, data = _mlp_problem()
    model_b = copy.deepcopy(model_a)
    plain = torch.optim.Adam(model_a.parameters(), lr=0.01)
    wrapped = _wrapped_adam(model_b, loss_fn, data)
    evaluations = []
    real_loss = wrapped.objective.loss
    wrapped.objective.loss = lambda theta: evaluations.append(1) or real_loss(theta)
    _steps_without_closure(model_a, loss_fn, data, plain, 40)
    _steps_without_closure(model_b, loss_fn, data, wrapped, 40)
    assert wrapped.events == [] and evaluations == []  # ‖g‖ large: not even L(θ) is computed
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("closure", [True, False])
def test_a_check_needs_a_flat_window_with_or_without_a_closure(closure):
    def run(loss_tol, steps=12):
        model, loss_fn, (x, y) = toy.worked_example(1e-5, 1e-5)  # ‖g‖ ≈ 3e-5: small throughout
        model, data = model.double(), (x.double(), y.double())
        opt = SaddleEscape(
            torch.optim.SGD(model.parameters(), lr=0.05), model, loss_fn, data,
            window=5, loss_tol=loss_tol,
        )  # fmt: skip
        for _ in range(steps):
            if closure:
                opt.step(_closure(opt, model, loss_fn, *data))
            else:
                _steps_without_closure(model, loss_fn, data, opt, 1)
        return [e.step for e in opt.events]

    assert run(1e-4) == [5]  # the window fills at step 5, not at step 1; then it starts again
    assert run(0.0) == []  # the loss keeps changing (by ~1e-11 a step): not flat, no check


def test_without_a_closure_a_large_gradient_empties_the_window():
    model, loss_fn, data = toy.worked_example(0.0, 0.0)  # the saddle itself: L = 1, g = 0
    opt = SaddleEscape(torch.optim.SGD(model.parameters(), lr=0.0), model, loss_fn, data, window=3)
    for step in range(1, 8):
        for p in model.parameters():
            p.grad = torch.full_like(p, 1.0 if step == 3 else 0.0)
        opt.step()
        if opt.events:
            break
    assert [e.step for e in opt.events] == [6]  # steps 4, 5, 6 make the window, not 1, 2, 4
