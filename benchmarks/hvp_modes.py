"""Which Hessian-vector product is fastest? (the choice behind ``Objective``'s HVP path)

    python -m benchmarks.hvp_modes [--repeats 15]

MLP 64-32-32-10 (3,466 parameters), 1,024 samples, cross-entropy, CPU. Prints the median
milliseconds of one gradient and of one HVP by: forward-over-reverse (jvp of grad), a fresh
double backward, reverse-over-reverse with the gradient graph built once at θ (saddlescope's
``hessian_operator``), and per column of a 64-vector block under ``vmap``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.func import grad, jvp

from saddlescope import Objective


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def measure(dtype: torch.dtype, repeats: int) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 32),
        torch.nn.Tanh(),
        torch.nn.Linear(32, 10),
    )
    x, y = torch.randn(1024, 64), torch.randint(0, 10, (1024,))
    obj = Objective(model, torch.nn.CrossEntropyLoss(), (x, y), dtype=dtype)
    theta = obj.theta0
    v = torch.randn_like(theta)
    V = torch.randn(obj.num_params, 64, dtype=dtype)
    batch = obj._batches[0]

    def f(t):
        return obj._batch_loss(t, batch.inputs, batch.targets)

    def double_backward():
        t = theta.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(f(t), t, create_graph=True)
        return torch.autograd.grad(g, t, v)[0]

    cached = obj.hessian_operator(theta)
    rows = {
        "gradient": median_ms(lambda: obj.grad(theta), repeats),
        "HVP forward-over-reverse (jvp of grad)": median_ms(
            lambda: jvp(grad(f), (theta,), (v,))[1], repeats
        ),
        "HVP double backward, fresh graph": median_ms(double_backward, repeats),
        "HVP reverse-over-reverse, graph cached at θ": median_ms(lambda: cached @ v, repeats),
        "HVP cached, per column of a 64-block (vmap)": median_ms(
            lambda: cached @ V, max(3, repeats // 3)
        )
        / 64,
    }
    print(f"\n{str(dtype).removeprefix('torch.')}, n = {obj.num_params}, 1,024 samples")
    base = rows["gradient"]
    for name, ms in rows.items():
        print(f"  {name:<46} {ms:8.3f} ms   {ms / base:5.2f}× gradient")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    for dtype in (torch.float32, torch.float64):
        measure(dtype, args.repeats)


if __name__ == "__main__":
    main()
