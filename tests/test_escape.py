"""Leaving saddles: the negative-curvature step against GD, perturbed GD and saddle-free Newton."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from conftest import assert_unchanged, classification_data, make_mlp, snapshot
from saddlescope import (
    InvalidInputError,
    Objective,
    SaddleEscape,
    classify,
    curvature_step,
    escape_saddle,
    toy,
)

F64 = torch.float64
METHODS = ("curvature", "perturbed-gd", "saddle-free-newton", "gd")


@pytest.fixture(scope="module")
def obj():
    return toy.worked_example_objective()


@pytest.mark.parametrize("start", [(1e-6, 0.0), (1e-6, 1e-6), (0.0, -1e-6)])
def test_curvature_step_reaches_the_minima_first(obj, start):
    theta = torch.tensor(start, dtype=F64)
    runs = {m: escape_saddle(obj, theta, method=m, target_loss=1e-8) for m in METHODS}
    for m, r in runs.items():
        assert r.reached, f"{m}: {r}"
        w1, w2 = r.theta.tolist()
        assert abs(w1 * w2 - 1) < 1e-3  # ended next to the hyperbola of minima
    best = runs["curvature"].steps_to_target
    assert best <= 6
    assert all(best < runs[m].steps_to_target for m in ("perturbed-gd", "saddle-free-newton", "gd"))
    assert runs["curvature"].path[1].action == "curvature"


def test_on_the_stable_manifold_only_curvature_and_noise_escape(obj):
    theta = torch.tensor([7e-7, -7e-7], dtype=F64)  # g points straight back to the saddle
    for m in ("gd", "saddle-free-newton"):
        assert not escape_saddle(obj, theta, method=m, target_loss=1e-8, max_steps=200).reached
    for m in ("curvature", "perturbed-gd"):
        assert escape_saddle(obj, theta, method=m, target_loss=1e-8, max_steps=200).reached


def test_curvature_step_line_search(obj):
    cp = classify(obj, torch.zeros(2, dtype=F64))
    new, loss, evals = curvature_step(obj, cp.theta, cp.escape_direction, cp.escape_curvature, 1.0)
    assert loss < 1.0 and evals >= 2
    assert loss == pytest.approx(float(obj.loss(new)))
    # Along an ascent direction no step passes: θ is returned unchanged.
    up = torch.tensor([1.0, -1.0], dtype=F64) / 2**0.5
    same, loss2, _ = curvature_step(obj, cp.theta, up, -2.0, 1.0)
    assert torch.equal(same, cp.theta) and loss2 == 1.0


def test_decrease_target_and_path_bookkeeping(obj):
    r = escape_saddle(obj, torch.tensor([1e-6, 0.0], dtype=F64), decrease=0.5)
    assert r.target_loss == pytest.approx(0.5, abs=1e-9) and r.reached
    steps = [s.step for s in r.path]
    assert steps == list(range(len(steps)))
    assert all(a.hvps <= b.hvps and a.seconds <= b.seconds for a, b in zip(r.path, r.path[1:]))
    assert r.to_dict()["reached"] is True and "reached loss" in str(r)


def test_saddle_free_newton_in_a_lanczos_subspace():
    model = make_mlp([3, 6, 2], "tanh", seed=0)
    x, y = classification_data(30, 3, 2)
    big = Objective(model, nn.CrossEntropyLoss(), (x, y), dtype=F64, memory_budget=1000)
    theta = big.theta0
    r = escape_saddle(big, theta, method="saddle-free-newton", max_steps=5, k=3)
    assert r.loss < r.path[0].loss and r.hvps > 0


def test_escape_leaves_the_model_alone():
    model = make_mlp([3, 4, 2], "tanh", seed=1)
    before = snapshot(model)
    x, y = classification_data(10, 3, 2)
    obj = Objective(model, nn.CrossEntropyLoss(), (x, y), dtype=F64)
    for m in METHODS:
        escape_saddle(obj, obj.theta0, method=m, max_steps=3)
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"method": "adam"}, "unknown method"),
        ({"target_loss": 0.1, "decrease": 0.1}, "not both"),
        ({"lr": -1.0}, "lr"),
        ({"max_steps": -1}, "max_steps"),
        ({"decrease": 0.0}, "decrease"),
    ],
)
def test_bad_options(obj, kwargs, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        escape_saddle(obj, torch.zeros(2, dtype=F64), **kwargs)


# ------------------------------------------------------------------------------ SaddleEscape
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
            SaddleEscape(base, model, loss_fn, data, window=10, grad_tol=1e-2) if wrapped else base
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


def test_cli_escape_compares_methods(tmp_path):
    from click.testing import CliRunner

    from saddlescope.cli import cli

    res = CliRunner().invoke(cli, ["escape", "--out", str(tmp_path), "--max-steps", "200"])
    assert res.exit_code == 0, res.output
    for m in METHODS:
        assert m in res.output
    assert (tmp_path / "escape_worked_example.png").stat().st_size > 5_000
