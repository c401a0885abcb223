"""The curvature path on a CUDA device agrees with the CPU (skipped where there is no GPU).

Run on a GPU machine: ``pytest tests/test_cuda.py``; ``benchmarks/gpu_check.sh`` times it.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import assert_unchanged, classification_data, image_data, make_cnn, make_mlp, snapshot
from saddlescope import Objective, classify, hessian_spectrum
from saddlescope.hessian import hessian_block_columns

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
F64 = torch.float64


def close(a: torch.Tensor, b: torch.Tensor, rtol: float = 1e-10) -> bool:
    a, b = a.detach().cpu(), b.detach().cpu()
    return float((a - b).abs().max()) <= rtol * max(float(b.abs().max()), 1e-300)


@pytest.mark.parametrize("case", ["mlp", "cnn"])
def test_cuda_matches_cpu(case):
    if case == "mlp":
        model, (x, y) = make_mlp([4, 6, 5, 3], "tanh"), classification_data(20, 4, 3)
    else:
        model, (x, y) = make_cnn(), image_data(12)
    before = snapshot(model)
    cpu = Objective(model, nn.CrossEntropyLoss(), (x, y), dtype=F64)
    gpu = Objective(model, nn.CrossEntropyLoss(), (x, y), dtype=F64, device="cuda")
    theta = cpu.theta0 + 0.1 * torch.randn(cpu.num_params, dtype=F64)
    v = torch.randn(cpu.num_params, dtype=F64)
    assert close(gpu.loss(theta), cpu.loss(theta))
    assert close(gpu.grad(theta), cpu.grad(theta))
    assert close(gpu.hvp(theta, v), cpu.hvp(theta, v))
    H = cpu.hessian(theta)
    assert close(gpu.hessian(theta), H)
    assert hessian_block_columns(gpu, theta) == gpu.num_params  # a small model: one block on a GPU
    exact = torch.linalg.eigvalsh(H)
    for which, want in (("largest", exact[-2:]), ("smallest", exact[:2])):
        s = hessian_spectrum(gpu, theta, k=2, which=which, method="lanczos", lanczos_tol=1e-10)
        assert close(s.eigenvalues, want, 1e-8)
        assert s.eigenvectors is not None and s.eigenvectors.device.type == "cuda"
    assert classify(gpu, theta).kind == classify(cpu, theta).kind
    assert_unchanged(model, before)


def test_cuda_graph_cache_within_budget():
    model, (x, y) = make_mlp([4, 6, 5, 3], "tanh"), classification_data(20, 4, 3)
    batches = [(x[i : i + 5], y[i : i + 5]) for i in range(0, 20, 5)]
    probe = Objective(model, nn.CrossEntropyLoss(), batches, dtype=F64, device="cuda")
    total = probe.graph_bytes(probe.theta0)
    assert total is not None and total > 0
    tight = Objective(
        model,
        nn.CrossEntropyLoss(),
        batches,
        dtype=F64,
        device="cuda",
        memory_budget=int(0.6 * total),
    )
    op = tight.hessian_operator(tight.theta0)
    assert op.cached_batches == 2
    v = torch.randn(tight.num_params, dtype=F64)
    assert close(op @ v, probe.hessian_operator(probe.theta0, cache=True) @ v, 1e-12)
