"""SaddleEscape against its bare base optimizer on runs that stall on a plateau.

    python -m benchmarks.saddle_escape_plateaus

Two stalls: the worked example started at (1e-5, 1e-5) next to its saddle (SGD, lr 0.05, until
loss < 1e-3), and a 3-layer 4-wide deep linear network from N(0, 0.01²) weights (SGD, lr 0.05,
until the loss halves). Prints the steps each optimizer needs and what SaddleEscape did.
"""

from __future__ import annotations

import torch
from torch import nn

from saddlescope import SaddleEscape, toy


def steps_until(model, loss_fn, data, opt, target: float, budget: int) -> int | None:
    for step in range(1, budget + 1):

        def closure():
            opt.zero_grad()
            loss = loss_fn(model(data[0]), data[1])
            loss.backward()
            return loss

        if opt.step(closure).item() < target:
            return step
    return None


def deep_linear(seed: int = 0, depth: int = 3, width: int = 4, scale: float = 1e-2):
    torch.manual_seed(seed)
    layers = [nn.Linear(width, width, bias=False, dtype=torch.float64) for _ in range(depth)]
    for layer in layers:
        nn.init.normal_(layer.weight, std=scale)
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(64, width, generator=g, dtype=torch.float64)
    target = torch.randn(width, width, generator=g, dtype=torch.float64)
    return nn.Sequential(*layers), nn.MSELoss(), (x, x @ target.T)


def main() -> None:
    cases = {
        "worked example from (1e-5, 1e-5), to loss < 1e-3": (
            lambda: toy.worked_example(1e-5, 1e-5),
            lambda start: 1e-3,
            {"window": 5},
        ),
        "deep linear 4-4-4-4 from N(0, 0.01²), to half the initial loss": (
            deep_linear,
            lambda start: 0.5 * start,
            {"window": 10, "stall_grad_norm": 1e-2},
        ),
    }
    for name, (make, target_of, options) in cases.items():
        row = []
        for wrapped in (False, True):
            model, loss_fn, data = make()
            target = target_of(loss_fn(model(data[0]), data[1]).item())
            base = torch.optim.SGD(model.parameters(), lr=0.05)
            opt = SaddleEscape(base, model, loss_fn, data, **options) if wrapped else base
            steps = steps_until(model, loss_fn, data, opt, target, 5000)
            row.append(steps)
            if wrapped:
                events = ", ".join(
                    f"step {e.step}: {e.action} (λ = {e.curvature:.3g}, HVPs {e.hvps})"
                    for e in opt.events
                )
        print(f"{name}: SGD {row[0]} steps, SaddleEscape(SGD) {row[1]} steps; events: {events}")


if __name__ == "__main__":
    main()
