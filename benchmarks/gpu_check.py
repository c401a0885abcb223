"""CPU/GPU agreement and GPU timings for the whole curvature path.

    python -m benchmarks.gpu_check [--device cuda]

On the MLP 64-32-32-10 (3,466 parameters, 1,024 samples) in float64: loss, gradient, HVP, dense
Hessian, torch Lanczos (top-5 and most negative), classification and a Newton-MR search on the
device, each compared with the CPU result (max relative difference), then median timings of one
gradient, one HVP, the dense Hessian and top-5 Lanczos on the device. Without CUDA it says so
and checks the CPU path against itself.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from saddlescope import Objective, classify, find_critical_point, hessian_spectrum


def timed(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    device = args.device if torch.cuda.is_available() or args.device == "cpu" else "cpu"
    if device != args.device:
        print(f"no CUDA device here: checking {device} against the CPU")
    else:
        name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
        print(f"device: {name}, torch {torch.__version__}")
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 10)
    )
    x, y = torch.randn(1024, 64), torch.randint(0, 10, (1024,))
    cpu = Objective(model, nn.CrossEntropyLoss(), (x, y), dtype=torch.float64)
    dev = Objective(model, nn.CrossEntropyLoss(), (x, y), dtype=torch.float64, device=device)
    theta = cpu.theta0
    v = torch.randn_like(theta)
    checks = {
        "loss": rel(dev.loss(theta), cpu.loss(theta)),
        "gradient": rel(dev.grad(theta), cpu.grad(theta)),
        "HVP": rel(dev.hvp(theta, v), cpu.hvp(theta, v)),
        "dense Hessian": rel(dev.hessian(theta), cpu.hessian(theta)),
    }
    for which in ("largest", "smallest"):
        k = 5 if which == "largest" else 1
        a = hessian_spectrum(dev, theta, k=k, which=which, method="lanczos", lanczos_tol=1e-10)
        b = hessian_spectrum(cpu, theta, k=k, which=which, method="dense", eigenvectors=False)
        checks[f"Lanczos {which} {k} vs dense"] = rel(a.eigenvalues, b.eigenvalues)
    search_dev = find_critical_point(dev, theta, max_steps=3)
    search_cpu = find_critical_point(cpu, theta, max_steps=3)
    # θ and ‖g‖ are not compared: MINRES runs to its cap on this ill-conditioned H, and a 1e-12
    # relative change of θ0 moves θ after 3 steps by 8e-3 relative on the CPU alone (``‖g‖``
    # by 3e-3); the loss reached agrees to 1e-7.
    checks["Newton-MR, 3 steps (loss)"] = rel(
        torch.tensor(search_dev.loss), torch.tensor(search_cpu.loss)
    )
    kinds = classify(dev, theta).kind, classify(cpu, theta).kind
    print("agreement (max relative difference, device vs CPU):")
    for name, value in checks.items():
        print(f"  {name:<32} {value:.2e}  {'ok' if value < 1e-6 else 'CHECK'}")
    print(
        f"  classify kind                    {kinds[0]} vs {kinds[1]}  "
        f"{'ok' if kinds[0] == kinds[1] else 'CHECK'}"
    )
    op = dev.hessian_operator(theta)
    print(f"timings on {device} (median of 5):")
    print(f"  gradient          {1e3 * timed(lambda: dev.grad(theta)):9.3f} ms")
    print(f"  HVP (cached)      {1e3 * timed(lambda: op @ v.to(device)):9.3f} ms")
    print(f"  dense Hessian     {1e3 * timed(lambda: dev.hessian(theta), 3):9.1f} ms")

    def top5() -> object:
        return hessian_spectrum(
            dev, theta, k=5, which="largest", method="lanczos", lanczos_tol=1e-6
        )

    print(f"  Lanczos top-5     {1e3 * timed(top5, 3):9.1f} ms")

    # the 269k-parameter MLP 784-256-256-10 on 2,048 samples, float32: the iterative path
    big = nn.Sequential(
        nn.Linear(784, 256), nn.Tanh(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 10)
    )
    xb, yb = torch.randn(2048, 784), torch.randint(0, 10, (2048,))
    obj = Objective(big, nn.CrossEntropyLoss(), (xb, yb), device=device)
    th = obj.theta0
    op_big = obj.hessian_operator(th)
    vb = torch.randn(obj.num_params, device=device)
    print(f"MLP 784-256-256-10 ({obj.num_params:,} parameters, 2,048 samples, float32):")
    print(f"  gradient          {1e3 * timed(lambda: obj.grad(th)):9.3f} ms")
    print(f"  HVP (cached)      {1e3 * timed(lambda: op_big @ vb):9.3f} ms")
    for k, which in ((1, "largest"), (5, "largest"), (1, "smallest")):
        spec = hessian_spectrum(obj, th, k=k, which=which, method="lanczos", lanczos_tol=1e-3)
        ms = 1e3 * timed(
            lambda k=k, which=which: hessian_spectrum(
                obj, th, k=k, which=which, method="lanczos", lanczos_tol=1e-3
            ),
            3,
        )
        print(
            f"  Lanczos {which} {k} at tol 1e-3: {ms:9.1f} ms, {spec.hvps} HVPs, "
            f"λ = {', '.join(f'{x:.5g}' for x in spec.eigenvalues.tolist())}"
        )


if __name__ == "__main__":
    main()
