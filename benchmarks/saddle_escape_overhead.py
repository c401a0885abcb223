"""SaddleEscape's cost: per step when training is not stalled, and per escape, before and after.

    python -m benchmarks.saddle_escape_overhead [--steps 200] [--repeats 7] [--escapes 5]
                                                [--cases mlp,bn-cnn,gru]

Per step: MLP 64-32-32-10 (3,466 parameters), 256 samples, cross-entropy, Adam(lr=1e-3), full
batch, CPU. Times ``steps`` optimizer steps with the bare Adam and with SaddleEscape(Adam),
alternating the two, ``repeats`` times, with a closure and without one (``loss.backward();
opt.step()``); prints the medians and the overhead, and checks that the wrapped runs made no
curvature check and ended at the same parameters as the bare ones.

Per escape: what one check costs, from the same θ, ``escapes`` times (median): *before*, a fresh
:class:`~saddlescope.Objective` for every escape (as SaddleEscape did: copy the model, read the
data, measure graph sizes, try ``vmap`` again), then the loss, gradient and way down
(:func:`~saddlescope.way_down`); *after*, one objective reused, taking the model's current values
(:meth:`~saddlescope.Objective.refresh`) before the same work. Also the objective's construction
alone, and a plain training step for scale. Cases: the MLP above; a small BatchNorm CNN
(2,162 parameters) on a DataLoader of 8 batches of 32 3×16×16 images, ``norm_stats="batch"``;
benchmarks.classify_path's GRU (4,863 parameters, 4 batches of 16 sequences of 20 steps), where
``vmap`` has no batching rule. One torch thread, float32.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from benchmarks.classify_path import gru_model_and_batches
from benchmarks.compare import load
from saddlescope import Objective, SaddleEscape
from saddlescope.negative_curvature import way_down


# ------------------------------------------------------------------- per step, not stalled
def run(model, opt, x, y, steps: int, closure: bool) -> float:
    loss_fn = nn.CrossEntropyLoss()

    def step_closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    start = time.perf_counter()
    for _ in range(steps):
        if closure:
            opt.step(step_closure)
        else:
            step_closure()
            opt.step()
    return time.perf_counter() - start


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 10)
    )


def per_step(steps: int, repeats: int) -> None:
    base_model = mlp()
    x, y = torch.randn(256, 64), torch.randint(0, 10, (256,))
    for closure in (True, False):
        bare, wrapped = [], []
        for _ in range(repeats):
            m1, m2 = copy.deepcopy(base_model), copy.deepcopy(base_model)
            opt1 = torch.optim.Adam(m1.parameters(), lr=1e-3)
            bare.append(run(m1, opt1, x, y, steps, closure))
            opt = SaddleEscape(
                torch.optim.Adam(m2.parameters(), lr=1e-3), m2, nn.CrossEntropyLoss(), (x, y)
            )
            wrapped.append(run(m2, opt, x, y, steps, closure))
            assert not opt.events, "training stalled: the benchmark measures the not-stalled path"
            assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))
        b, w = statistics.median(bare), statistics.median(wrapped)
        how = "with a closure   " if closure else "without a closure"
        print(
            f"  {how}: bare {1e3 * b / steps:.3f} ms/step, SaddleEscape {1e3 * w / steps:.3f} "
            f"ms/step; overhead {100 * (w - b) / b:+.1f} %"
        )


# ----------------------------------------------------------------------------- per escape
class BNCNN(nn.Module):
    """conv 3→8 → BN → ReLU → conv 8→8 → BN → ReLU → 4×4 average pool → linear 128 → 10."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
        )
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


Case = tuple[nn.Module, Any, Any, Any, dict[str, Any]]  # model, loss_fn, data, one batch, options


def mlp_case() -> Case:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(256, 64, generator=g), torch.randint(0, 10, (256,), generator=g)
    return mlp(), nn.CrossEntropyLoss(), (x, y), (x, y), {}


def bn_cnn_case() -> Case:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(256, 3, 16, 16, generator=g), torch.randint(0, 10, (256,), generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    return BNCNN().train(), nn.CrossEntropyLoss(), loader, (x[:32], y[:32]), {}


def gru_case() -> Case:
    model, batches = gru_model_and_batches()
    return model, nn.CrossEntropyLoss(), batches, batches[0], {}


CASES: dict[str, Callable[[], Case]] = {"mlp": mlp_case, "bn-cnn": bn_cnn_case, "gru": gru_case}
OPTIONS = {"norm_stats": "batch"}  # SaddleEscape's default


def escape_from(obj: Objective, theta: torch.Tensor) -> str:
    """The check SaddleEscape makes: loss, gradient, the way down (the model is not written)."""
    loss, g = obj.loss_and_grad(theta)
    new, _, low = way_down(obj, theta, g, float(loss), None, seed=0)
    return f"{'escaped' if new is not None else 'no-negative-curvature'}, {low.hvps} HVPs"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def per_escape(name: str, make: Callable[[], Case], repeats: int) -> None:
    model, loss_fn, data, (x, y), opts = make()
    opts = OPTIONS | opts

    def build() -> Objective:
        return Objective(model, loss_fn, data, **opts)

    def before() -> str:  # a fresh objective for every escape
        obj = build()
        return escape_from(obj, obj.theta0)

    reused = build()
    escape_from(reused, reused.theta0)  # its first check pays what every fresh one pays

    def after() -> str:
        return escape_from(reused, reused.refresh(model))

    sgd = torch.optim.SGD(model.parameters(), lr=0.0)

    def plain_step() -> None:
        sgd.zero_grad()
        loss_fn(model(x), y).backward()
        sgd.step()

    rows: dict[str, list[float]] = {"build": [], "before": [], "after": [], "step": []}
    outcome = ""
    for _ in range(repeats):  # interleaved, so load changes hit both alike
        rows["build"].append(timed(build)[0])
        t, outcome = timed(before)
        rows["before"].append(t)
        t, again = timed(after)
        rows["after"].append(t)
        assert again == outcome
        rows["step"].append(timed(plain_step)[0])
    med = {k: statistics.median(v) for k, v in rows.items()}
    n = reused.num_params
    print(
        f"  {name:<7} ({n:,} params, {reused.num_batches} batch(es)): before {med['before']:.3f} s"
        f", after {med['after']:.3f} s ({med['before'] / med['after']:.1f}× less); building the "
        f"objective alone {med['build']:.3f} s; a training step {med['step']:.4f} s; {outcome}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--escapes", type=int, default=5, help="repeats of each escape timing")
    parser.add_argument("--cases", default=",".join(CASES), help="escape cases, comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"SaddleEscape — torch {torch.__version__}, 1 thread, load {load()}")
    print(f"per step, not stalled ({args.steps} Adam steps, median of {args.repeats}):")
    per_step(args.steps, args.repeats)
    print(f"per escape (median of {args.escapes}; before: a fresh Objective each, after: reused):")
    for name in args.cases.split(","):
        per_escape(name, CASES[name], args.escapes)
    print(f"load {load()}")


if __name__ == "__main__":
    main()
