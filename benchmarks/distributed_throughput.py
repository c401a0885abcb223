"""DistributedObjective throughput on 1, 2, … CPU ranks of this machine, and what limits it.

    python -m benchmarks.distributed_throughput [--ranks 1 2] [--samples 20000] [--repeats 7]

Starts ``torchrun --standalone`` once per rank count. Every rank builds the same tanh MLP
(4 → 64 → 64 → 1, float64, 4,545 parameters) on its shard of a teacher-student dataset and
times, as medians of ``--repeats``: a gradient, one HVP, a block of 32 HVPs, and a bare
all-reduce of n numbers (the latency every product pays). Rank 0 prints one row per rank count.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
from torch import nn


def _median_seconds(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        torch.distributed.barrier()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def rank_main(samples: int, repeats: int) -> None:
    """One rank's measurements (run under torchrun)."""
    from saddlescope import DistributedObjective, shard_slice
    from saddlescope.data import load_dataset

    torch.distributed.init_process_group("gloo")
    data = load_dataset("teacher-student", n_samples=samples, d_in=4)
    part = shard_slice(samples)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(4, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1)
    )
    obj = DistributedObjective(
        model.double(), nn.MSELoss(), (data.inputs[part], data.targets[part])
    )
    theta, n = obj.theta0, obj.num_params
    op = obj.hessian_operator(theta)
    v = torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    V = torch.randn(n, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    op @ v  # builds the graphs
    buf = torch.zeros(n, dtype=torch.float64)
    row = {
        "gradient": _median_seconds(lambda: obj.loss_and_grad(theta), repeats),
        "hvp": _median_seconds(lambda: op @ v, repeats),
        "hvp32": _median_seconds(lambda: op @ V, repeats) / 32,
        "allreduce": _median_seconds(lambda: torch.distributed.all_reduce(buf), repeats),
    }
    if torch.distributed.get_rank() == 0:
        ranks = torch.distributed.get_world_size()
        print(
            f"| {ranks} | {samples // ranks:,} | {row['gradient'] * 1e3:.2f} | "
            f"{row['hvp'] * 1e3:.2f} | {row['hvp32'] * 1e3:.2f} | {row['allreduce'] * 1e3:.3f} |",
            flush=True,
        )
    torch.distributed.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--rank-main", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_main:
        rank_main(args.samples, args.repeats)
        return
    print(f"{args.samples:,} samples, 4,545 parameters, float64, 1 thread per rank (ms, medians)")
    print("| ranks | samples/rank | gradient | HVP | HVP in a block of 32 | all-reduce of n |")
    print("|---:|---:|---:|---:|---:|---:|")
    for ranks in args.ranks:
        subprocess.run(
            [
                *(sys.executable, "-m", "torch.distributed.run", "--standalone"),
                *(f"--nproc-per-node={ranks}", "-m", "benchmarks.distributed_throughput"),
                *("--rank-main", f"--samples={args.samples}", f"--repeats={args.repeats}"),
            ],
            check=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )


if __name__ == "__main__":
    main()
