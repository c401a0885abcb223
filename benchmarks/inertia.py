"""Inertia without a dense Hessian: the SLQ estimate against exact dense eigh, and their costs.

    python -m benchmarks.inertia [--samples 200] [--hidden 64,48] [--lbfgs 300] [--budget 0.08]
                                 [--probes 1] [--seeds 5] [--threads 1]

A tanh MLP 16 → 64 → 48 → 10 (4,698 parameters, float64) on ``--samples`` embedded digits
(4×4-pooled, squared error). The point: full-batch L-BFGS (``--lbfgs`` iterations) from the
seeded initialisation, then Newton-MR (``find_critical_point``, steps capped at length 1) to
‖g‖ ≤ 1e-10. With 200 samples × 10 outputs < 4,698 parameters it is a zero-loss minimum whose
Hessian JᵀJ has a null space of at least 2,698 — a hard case for counting at rtol = 1e-6. With
``--samples 1000 --lbfgs 10`` Newton-MR stops at a gradient-flat point (‖g‖ ≈ 6e-5) whose
spectrum has both signs in bulk (n₋ ≈ 1,370): the mixed case, reported as such.

Prints the exact dense inertia (n HVPs as ``vmap`` blocks + ``eigvalsh``, seconds), then
``estimate_inertia`` with ``--budget`` × n HVPs (default 8 %, which keeps its seconds under 10 %
of the dense path's as well), spent on ``--probes`` Lanczos runs: counts with error bars, HVPs,
seconds, the ratios of costs and whether each bar covers the truth, for ``--seeds`` probe seeds;
then, from seed 0's run (no more HVPs: Lanczos runs are nested), the bars after fewer steps and
at coarser tolerances.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from saddlescope import InertiaEstimate, Objective, find_critical_point, inertia_from_density, slq
from saddlescope.data import load_dataset
from saddlescope.models import mlp
from saddlescope.tolerance import default_rtol


def lbfgs(obj: Objective, theta: torch.Tensor, iterations: int) -> torch.Tensor:
    """Full-batch L-BFGS with a strong-Wolfe line search."""
    p = theta.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [p], lr=1.0, max_iter=iterations, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        value, g = obj.loss_and_grad(p.detach())
        p.grad = g
        return value

    opt.step(closure)
    return p.detach()


def row(
    label: str, est: InertiaEstimate, truth: tuple[int, int, int], seconds: float | None = None
) -> str:
    n = est.num_params
    cost = f"{est.hvps} HVPs" + ("" if seconds is None else f", {seconds:.2f} s")
    counts = est.inertia
    return (
        f"  {label:<14} {counts}  | min ratio "
        f"{est.minimum_ratio:.4f} ± {counts.minimum_ratio_err:.4f} (quadrature "
        f"{est.quadrature[2] / n:.4f}, sampling {est.statistical[2] / n:.4f}), "
        f"|error| {abs(est.minimum_ratio - truth[2] / n):.4f}  | covers: "
        f"{'yes' if est.covers(*truth) else 'NO'}  | {cost}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--hidden", default="64,48")
    parser.add_argument("--lbfgs", type=int, default=300, help="L-BFGS iterations first")
    parser.add_argument("--budget", type=float, default=0.08, help="HVPs as a fraction of n")
    parser.add_argument("--probes", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hidden = [int(h) for h in args.hidden.split(",")]

    data = load_dataset("digits", n_samples=args.samples, pool=2)
    obj = Objective(mlp(16, hidden, 10), nn.MSELoss(), (data.inputs, data.targets))
    n = obj.num_params
    print(
        f"tanh MLP 16 → {' → '.join(map(str, hidden))} → 10 on {args.samples} digits: "
        f"n = {n:,} parameters, float64, {args.threads} thread(s)"
    )
    start = time.perf_counter()
    theta = lbfgs(obj, obj.theta0, args.lbfgs) if args.lbfgs else obj.theta0
    search = find_critical_point(obj, theta, method="newton-mr", max_step_norm=1.0)
    print(
        f"point: L-BFGS ({args.lbfgs} it.) + Newton-MR {search.status} in {search.steps} steps: "
        f"loss {search.loss:.3g}, ‖g‖ {search.grad_norm:.2g} ({time.perf_counter() - start:.1f} s)"
    )
    theta = search.theta

    rtol = default_rtol(obj.dtype)
    start = time.perf_counter()
    lam = torch.linalg.eigvalsh(obj.hessian(theta))
    dense_seconds = time.perf_counter() - start
    scale = float(lam.abs().max())

    def exact(r: float) -> tuple[int, int, int]:
        tol = r * scale
        return int((lam < -tol).sum()), int((lam.abs() <= tol).sum()), int((lam > tol).sum())

    truth = exact(rtol)
    print(
        f"exact (dense): n-={truth[0]} n0={truth[1]} n+={truth[2]} at |λ| ≤ {rtol * scale:.3g} "
        f"(rtol {rtol:g} · max|λ| {scale:.4g}); index {truth[0] / n:.4f}, minimum ratio "
        f"{truth[2] / n:.4f}; cost {n} HVPs + eigvalsh = {dense_seconds:.1f} s"
    )

    steps = max(1, int(args.budget * n) // args.probes)
    print(
        f"estimate: estimate_inertia, {args.probes} probe(s) × {steps} steps (SLQ + Gauss–Radau "
        f"brackets, 95 % bars)"
    )
    first = None
    covered, costs = 0, []
    for seed in range(args.seeds):
        start = time.perf_counter()
        sd = slq(obj, theta, lanczos_steps=steps, probes=args.probes, seed=seed)
        est = inertia_from_density(sd, rtol=rtol)
        seconds = time.perf_counter() - start
        first = first or sd
        covered += est.covers(*truth)
        costs.append((est.hvps, seconds))
        print(row(f"seed {seed}", est, truth, seconds))
    hvps, seconds = costs[0]
    print(
        f"cost ratio (seed 0): HVPs {hvps}/{n} = {hvps / n:.3f}, seconds {seconds:.2f}/"
        f"{dense_seconds:.1f} = {seconds / dense_seconds:.3f}; bars covering the truth: "
        f"{covered}/{args.seeds}"
    )

    assert first is not None
    print("seed 0's run after fewer steps (same HVPs, nested Lanczos):")
    for k in sorted({steps // 4, steps // 2, (3 * steps) // 4}):
        if k >= 1:
            print(row(f"{k} steps", inertia_from_density(first.truncated(k), rtol=rtol), truth))
    print("seed 0's run at coarser tolerances:")
    for r in (1e-5, 1e-4, 1e-3, 1e-2):
        print(row(f"rtol {r:g}", inertia_from_density(first, rtol=r), exact(r)))


if __name__ == "__main__":
    main()
