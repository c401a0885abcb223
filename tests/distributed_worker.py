"""One rank of the distributed tests (tests/test_distributed.py starts them).

    python tests/distributed_worker.py SCENARIO OUT_DIR     (env: RANK, WORLD_SIZE, MASTER_PORT)

Scenarios: ``same`` computes everything :func:`analyse` does on this rank's shard and saves it
to OUT_DIR/rank<r>.pt; ``relu`` the same for a ReLU network; ``bad-shard`` gives rank 1 a
malformed shard; ``late`` keeps rank 1 away longer than the group's timeout.
"""

from __future__ import annotations

import datetime
import os
import sys
import time
from typing import Any

import torch
from torch import Tensor, nn

from saddlescope import (
    DistributedObjective,
    Objective,
    classify,
    escape_saddle,
    estimate_inertia,
    find_critical_point,
    hessian_spectrum,
    kink_check,
    shard_slice,
)

N_SAMPLES = 13  # uneven shards on 2 and 3 ranks


def problem(activation: str = "tanh") -> tuple[nn.Module, Tensor, Tensor]:
    """A small MLP and its data, the same on every rank (float64, seeded)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(N_SAMPLES, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(N_SAMPLES, 2, generator=gen, dtype=torch.float64)
    torch.manual_seed(1)
    act = nn.Tanh() if activation == "tanh" else nn.ReLU()
    model = nn.Sequential(nn.Linear(3, 4), act, nn.Linear(4, 2)).double()
    return model, x, y


def analyse(obj: Objective, relu: bool = False) -> dict[str, Any]:
    """Everything the tests compare across rank counts."""
    theta = obj.theta0
    loss, grad = obj.loss_and_grad(theta)
    v = torch.randn(obj.num_params, generator=torch.Generator().manual_seed(2), dtype=obj.dtype)
    spec = hessian_spectrum(obj, theta, k=2, which="both", method="lanczos", seed=0)
    inertia = estimate_inertia(obj, theta, seed=0)
    search = find_critical_point(obj, theta, method="auto", max_steps=60)
    out: dict[str, Any] = {
        "loss": loss,
        "grad": grad,
        "hvp": obj.hvp(theta, v),
        "hessian": obj.hessian(theta),
        "eigenvalues": spec.eigenvalues,
        "eigenvectors": spec.eigenvectors,
        "inertia": (inertia.quadrature, inertia.statistical, inertia.threshold),
        "search": (search.status, search.steps, search.hvps, search.theta),
        "describe": obj.describe(),
    }
    if relu:
        out["kink"] = kink_check(obj, search.theta).to_dict()
        return out
    point = classify(obj, search.theta)
    out["classify"] = (point.kind, point.index, point.spectrum.eigenvalues)
    out["escape"] = escape_saddle(obj, theta, max_steps=5).theta
    return out


def main(scenario: str, out_dir: str) -> None:
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    timeout = datetime.timedelta(seconds=float(os.environ.get("GROUP_TIMEOUT", "60")))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world, timeout=timeout)
    model, x, y = problem("relu" if scenario == "relu" else "tanh")
    part = shard_slice(N_SAMPLES)
    data: Any = (x[part], y[part])
    if scenario == "bad-shard" and rank == 1:
        data = (x[part], y[part][:, :1])  # the wrong number of targets
    if scenario == "late" and rank == 1:
        time.sleep(60)
    obj = DistributedObjective(model, nn.MSELoss(), data)
    torch.save(analyse(obj, relu=scenario == "relu"), os.path.join(out_dir, f"rank{rank}.pt"))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
