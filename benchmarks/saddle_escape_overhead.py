"""SaddleEscape's cost when training is not stalled, against its bare base optimizer.

    python -m benchmarks.saddle_escape_overhead [--steps 200] [--repeats 7]

MLP 64-32-32-10 (3,466 parameters), 256 samples, cross-entropy, Adam(lr=1e-3), full batch, CPU.
Times ``steps`` optimizer steps (closure included) with the bare Adam and with SaddleEscape(Adam),
alternating the two, ``repeats`` times; prints the medians and the overhead. Also checks that the
wrapped run made no curvature check (training never stalled) and ended at the same parameters.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from saddlescope import SaddleEscape


def run(model, opt, x, y, steps: int) -> float:
    loss_fn = nn.CrossEntropyLoss()

    def closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    start = time.perf_counter()
    for _ in range(steps):
        opt.step(closure)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(0)
    base_model = nn.Sequential(
        nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 10)
    )
    x, y = torch.randn(256, 64), torch.randint(0, 10, (256,))
    bare, wrapped = [], []
    for _ in range(args.repeats):
        m1, m2 = copy.deepcopy(base_model), copy.deepcopy(base_model)
        bare.append(run(m1, torch.optim.Adam(m1.parameters(), lr=1e-3), x, y, args.steps))
        opt = SaddleEscape(
            torch.optim.Adam(m2.parameters(), lr=1e-3), m2, nn.CrossEntropyLoss(), (x, y)
        )
        wrapped.append(run(m2, opt, x, y, args.steps))
        assert not opt.events, "training stalled: the benchmark measures the not-stalled path"
        assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))
    b, w = statistics.median(bare), statistics.median(wrapped)
    print(
        f"{args.steps} Adam steps, median of {args.repeats}: bare {1e3 * b / args.steps:.3f} "
        f"ms/step, SaddleEscape {1e3 * w / args.steps:.3f} ms/step; overhead "
        f"{100 * (w - b) / b:+.1f} % (same parameters at the end, no curvature checks)"
    )


if __name__ == "__main__":
    main()
