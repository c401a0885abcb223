"""CurvatureMonitor: verdicts against closed forms, warm starts, logging, resuming, bad input."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import pytest
import torch
from torch import nn

from saddlescope import CurvatureMonitor, toy
from saddlescope.errors import InvalidInputError


def _sgd_steps(model: nn.Module, loss_fn: nn.Module, data, monitor, steps: int, lr: float):  # type: ignore[no-untyped-def]
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    checks = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(data[0]), data[1])
        loss.backward()
        opt.step()
        check = monitor.step(loss)
        if check is not None:
            checks.append(check)
    return checks


def test_a_run_stalled_at_the_worked_example_s_saddle_is_told_and_escaped() -> None:
    model, loss_fn, data = toy.worked_example(1e-7, 0.0)  # next to the saddle at 0
    monitor = CurvatureMonitor(model, loss_fn, data, window=5, dtype=torch.float64)
    checks = _sgd_steps(model, loss_fn, data, monitor, 5, lr=1e-3)
    assert len(checks) == 1 and checks[0].reason == "plateau" and checks[0].step == 5
    c = checks[0]
    assert c.verdict == "stalled-at-saddle"
    assert c.lambda_min == pytest.approx(-2.0, abs=1e-5)  # H(0) = [[0, −2], [−2, 0]]
    assert c.lambda_max == pytest.approx(2.0, abs=1e-5)
    u = c.escape_direction
    assert u is not None and abs(float(u[0] * u[1])) == pytest.approx(0.5, abs=1e-6)
    before = float(loss_fn(model(data[0]), data[1]).detach())
    after = monitor.escape()
    assert after < before - 0.5
    assert float(loss_fn(model(data[0]), data[1]).detach()) == pytest.approx(after)


def test_a_bfloat16_model_stalled_at_a_saddle_is_told_and_escaped() -> None:
    model, loss_fn, data = toy.worked_example(1e-7, 0.0)
    model = model.to(torch.bfloat16)
    data = tuple(t.to(torch.bfloat16) for t in data)
    monitor = CurvatureMonitor(model, loss_fn, data, window=5)
    (c,) = _sgd_steps(model, loss_fn, data, monitor, 5, lr=1e-3)
    assert c.verdict == "stalled-at-saddle" and c.lambda_min == pytest.approx(-2.0, abs=2e-2)
    assert monitor.escape() < float(c.loss) - 0.5


def test_a_run_stalled_at_a_minimum_is_confirmed_from_a_cold_start() -> None:
    torch.manual_seed(0)
    x = torch.randn(32, 3, dtype=torch.float64)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64)
    model = nn.Linear(3, 1).double()
    monitor = CurvatureMonitor(model, nn.MSELoss(), (x, y), window=10, every=40)
    checks = _sgd_steps(model, nn.MSELoss(), (x, y), monitor, 400, lr=0.2)
    stalled = [c for c in checks if c.verdict == "stalled-at-minimum"]
    assert stalled and all(not c.warm for c in stalled)
    H = (
        2
        * torch.cat([x, torch.ones(32, 1, dtype=x.dtype)], 1).T
        @ torch.cat([x, torch.ones(32, 1, dtype=x.dtype)], 1)
        / 32
    )  # the exact Hessian of the mean squared error
    lam = torch.linalg.eigvalsh(H)
    assert stalled[-1].lambda_min == pytest.approx(float(lam[0]), abs=1e-3 * float(lam[-1]))
    assert stalled[-1].lambda_max == pytest.approx(float(lam[-1]), rel=1e-3)


def test_warm_checks_agree_with_cold_ones_for_fewer_products() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randn(64, 2)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    warm = CurvatureMonitor(model, nn.MSELoss(), (x, y), every=20, dtype=torch.float64)
    checks = _sgd_steps(model, nn.MSELoss(), (x, y), warm, 100, lr=0.01)
    assert [c.warm for c in checks] == [False, True, True, True, True]
    cold = CurvatureMonitor(model, nn.MSELoss(), (x, y), dtype=torch.float64)
    c = cold.check()
    dense = torch.linalg.eigvalsh(cold.objective.hessian(cold.objective.theta0))
    scale = float(dense.abs().max())
    for got in (checks[-1], c):
        assert abs(got.lambda_min - float(dense[0])) <= 1e-3 * scale
        assert abs(got.lambda_max - float(dense[-1])) <= 1e-3 * scale
    assert checks[-1].hvps < c.hvps


def test_the_monitor_never_changes_the_model() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    model.train()
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    nn.MSELoss()(model(x), y).backward()
    before = copy.deepcopy(model.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    monitor = CurvatureMonitor(model, nn.MSELoss(), (x, y), every=1, inertia=True)
    for _ in range(3):
        monitor.step(1.0)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert monitor.checks[-1].minimum_ratio is not None


def test_checks_reach_tensorboard_and_csv(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    model, loss_fn, data = toy.worked_example(0.5, -0.3)
    writer = SummaryWriter(str(tmp_path / "tb"))
    monitor = CurvatureMonitor(
        model, loss_fn, data, every=2, writer=writer, csv_path=tmp_path / "c.csv"
    )
    _sgd_steps(model, loss_fn, data, monitor, 6, lr=0.01)
    writer.close()
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert [e.step for e in events.Scalars("curvature/lambda_min")] == [2, 4, 6]
    assert "curvature/ritz_values" in events.Tags()["histograms"]
    rows = list(csv.DictReader((tmp_path / "c.csv").read_text().splitlines()))
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert float(rows[-1]["lambda_min"]) == pytest.approx(monitor.checks[-1].lambda_min)


def test_a_resumed_run_goes_on_without_a_row_lost_or_doubled(tmp_path: Path) -> None:
    def run(monitor: CurvatureMonitor, model: nn.Module, steps: int) -> None:
        _sgd_steps(model, nn.MSELoss(), data, monitor, steps, lr=0.05)

    torch.manual_seed(0)
    data = (torch.randn(16, 3, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64))
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).double()
    model_a = copy.deepcopy(net)
    straight = CurvatureMonitor(model_a, nn.MSELoss(), data, every=3, csv_path=tmp_path / "a.csv")
    run(straight, model_a, 12)

    model_b = copy.deepcopy(net)
    first = CurvatureMonitor(model_b, nn.MSELoss(), data, every=3, csv_path=tmp_path / "b.csv")
    run(first, model_b, 6)
    saved, saved_model = first.state_dict(), copy.deepcopy(model_b.state_dict())
    run(first, model_b, 3)  # checks written after the checkpoint, then a crash
    model_b.load_state_dict(saved_model)
    resumed = CurvatureMonitor(model_b, nn.MSELoss(), data, every=3, csv_path=tmp_path / "b.csv")
    resumed.load_state_dict(saved)
    run(resumed, model_b, 6)
    a = list(csv.DictReader((tmp_path / "a.csv").read_text().splitlines()))
    b = list(csv.DictReader((tmp_path / "b.csv").read_text().splitlines()))
    assert [r["step"] for r in b] == ["3", "6", "9", "12"]
    for ra, rb in zip(a, b):
        assert float(ra["lambda_min"]) == pytest.approx(float(rb["lambda_min"]), rel=1e-9)
    assert [c.step for c in resumed.checks] == [3, 6, 9, 12]


@pytest.mark.bad_input
def test_bad_monitor_input_gets_a_clear_error(tmp_path: Path) -> None:
    model, loss_fn, data = toy.worked_example()
    with pytest.raises(InvalidInputError, match="add_scalar and add_histogram"):
        CurvatureMonitor(model, loss_fn, data, writer=object())
    with pytest.raises(InvalidInputError, match="window"):
        CurvatureMonitor(model, loss_fn, data, window=1)
    monitor = CurvatureMonitor(model, loss_fn, data)
    with pytest.raises(InvalidInputError, match="stalled-at-saddle"):
        monitor.escape()
    with pytest.raises(InvalidInputError, match="state_dict"):
        monitor.load_state_dict({"version": 99})
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    other = CurvatureMonitor(model, loss_fn, data, csv_path=bad)
    with pytest.raises(InvalidInputError, match="not a curvature log"):
        other.load_state_dict(monitor.state_dict())
