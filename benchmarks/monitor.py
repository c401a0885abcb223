"""CurvatureMonitor: warm-started checks against cold ones over a real run, and its overhead.

    python -m benchmarks.monitor [--steps 6000] [--every 200] [--repeats 5]

The digits MLP (16 → 8 → 10 tanh, 226 parameters, 200 pooled digits, cross-entropy) trains with
full-batch Adam (lr 0.01) until its loss is flat on a plateau near a saddle; the monitor checks
every ``--every`` steps and on the plateau (float64). At each check a cold monitor (a random
start vector) checks the same θ, so the two are compared on equal footing: HVPs and seconds per
check after the first, and each one's largest error of λ_min and λ_max against a dense
``eigvalsh`` at the same θ, relative to max|λ|.

Then the overhead of ``monitor.step(loss)`` on steps that do not check, against a training step
alone (medians of ``--repeats`` runs of 2,000 steps, the window never flat).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from saddlescope import CurvatureMonitor
from saddlescope.data import load_dataset
from saddlescope.runtime import one_thread


def _problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    d = load_dataset("digits", n_samples=200, pool=2)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 10))
    return model, d.inputs.float(), d.targets.argmax(1)


def warm_against_cold(steps: int, every: int) -> None:
    """Train, check warm and cold at the same θ, print the comparison."""
    model, x, y = _problem()
    loss_fn = nn.CrossEntropyLoss()
    warm = CurvatureMonitor(
        model, loss_fn, (x, y), every=every, window=100, loss_tol=1e-3, dtype=torch.float64
    )
    cold = CurvatureMonitor(model, loss_fn, (x, y), warm_start=False, dtype=torch.float64)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    pairs, truth = [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        check = warm.step(loss)
        if check is not None:
            pairs.append((check, cold.check(check.reason)))
            obj = cold.objective
            truth.append(torch.linalg.eigvalsh(obj.hessian(obj.theta0))[[0, -1]].tolist())
    later = pairs[1:]
    verdicts = sorted({w.verdict for w, _ in pairs})
    w_hvps = sum(w.hvps for w, _ in later)
    c_hvps = sum(c.hvps for _, c in later)
    w_s = sum(w.seconds for w, _ in later)
    c_s = sum(c.seconds for _, c in later)

    def worst(i: int) -> float:  # 0: warm, 1: cold; the error against the dense eigvalsh
        return max(
            max(abs(p[i].lambda_min - lo), abs(p[i].lambda_max - hi)) / max(abs(lo), abs(hi))
            for p, (lo, hi) in zip(pairs, truth)
        )

    print(f"{len(pairs)} checks over {steps} Adam steps ({', '.join(verdicts)})")
    print(f"first check: {pairs[0][0].hvps} HVPs (cold)")
    print(
        f"checks after the first: warm {w_hvps} HVPs, {w_s:.3f} s; cold {c_hvps} HVPs, "
        f"{c_s:.3f} s; warm/cold = {w_hvps / c_hvps:.1%} of the HVPs, {w_s / c_s:.1%} of the time"
    )
    differ = sum((w.lambda_min < -w.threshold) != (c.lambda_min < -c.threshold) for w, c in pairs)
    print(
        f"largest error of λ_min, λ_max against dense eigvalsh, / max|λ|: warm {worst(0):.2e}, "
        f"cold {worst(1):.2e}; checks where they differ on λ_min < −threshold: {differ}"
    )


def overhead(repeats: int) -> None:
    """Seconds per training step with and without monitor.step (no check runs)."""
    model, x, y = _problem()
    loss_fn = nn.CrossEntropyLoss()
    monitor = CurvatureMonitor(model, loss_fn, (x, y), window=50, loss_tol=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def run(with_monitor: bool) -> float:
        t0 = time.perf_counter()
        for _ in range(2000):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            if with_monitor:
                monitor.step(loss)
        return (time.perf_counter() - t0) / 2000

    base = statistics.median(run(False) for _ in range(repeats))
    with_m = statistics.median(run(True) for _ in range(repeats))
    calls = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(2000):
            monitor.step(1.0 / (i + 1))  # a falling loss: the window is never flat
        calls.append((time.perf_counter() - t0) / 2000)
    assert not monitor.checks
    print(
        f"a training step: {base * 1e6:.1f} µs alone, {with_m * 1e6:.1f} µs with "
        f"monitor.step(loss); monitor.step alone: {statistics.median(calls) * 1e6:.2f} µs"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--every", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with one_thread():
        warm_against_cold(args.steps, args.every)
        overhead(args.repeats)


if __name__ == "__main__":
    main()
