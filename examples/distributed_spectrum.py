"""Curvature of one model over data split across processes.

    torchrun --standalone --nproc-per-node 2 examples/distributed_spectrum.py

Every rank builds the same seeded MLP and takes its DistributedSampler shard of 600 embedded
digits; the objective all-reduces every loss, gradient and Hessian-vector product, so each
rank computes the spectrum, a critical point and its kind for the model on all 600 samples.
Rank 0 prints them. docs/distributed.md explains the launch, on one machine or several.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from saddlescope import DistributedObjective, classify, find_critical_point, hessian_spectrum
from saddlescope.data import load_dataset


def main() -> None:
    """Analyse the model on this rank's shard, completed over all ranks; rank 0 prints."""
    dist.init_process_group("gloo")  # "nccl" with one GPU per rank
    data = load_dataset("digits", n_samples=600, pool=2)
    dataset = TensorDataset(data.inputs, data.targets.argmax(1))
    sampler = DistributedSampler(dataset, shuffle=False)  # 600 divides by 1, 2, 3, 4 ranks
    loader = DataLoader(dataset, batch_size=100, sampler=sampler)
    torch.manual_seed(0)  # the same model on every rank
    model = nn.Sequential(nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 10)).double()
    obj = DistributedObjective(model, nn.CrossEntropyLoss(), loader)
    spectrum = hessian_spectrum(obj, obj.theta0, k=3, which="both", method="lanczos", seed=0)
    search = find_critical_point(obj, obj.theta0, method="auto")
    point = classify(obj, search.theta)
    if dist.get_rank() == 0:
        print(f"{obj.describe()['ranks']} ranks, {obj.num_samples} samples, {obj.num_params} θ")
        print("extreme eigenvalues:", [f"{v:.6g}" for v in spectrum.eigenvalues.tolist()])
        print(f"search: {search.status} after {search.steps} steps, loss {search.loss:.10g}")
        print(
            f"there: {point.kind}, index {point.index:.4f}, minimum ratio {point.minimum_ratio:.4f}"
        )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
