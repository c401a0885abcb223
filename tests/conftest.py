"""Shared fixtures: small models with known structure, and a model-snapshot checker."""

from __future__ import annotations

import copy
import os

# Tests never download: the HuggingFace hub and transformers run offline. Set here, before any
# test module imports transformers (huggingface_hub reads these at import), so a plain `pytest`
# is covered as well as `make test`.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest
import torch
from torch import nn

# The models here are tiny: one thread is faster, and immune to a busy machine's oversubscription.
torch.set_num_threads(1)


def make_mlp(
    widths: list[int],
    activation: str = "tanh",
    *,
    batchnorm: bool = False,
    dropout: float = 0.0,
    seed: int = 0,
) -> nn.Sequential:
    torch.manual_seed(seed)
    act = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}[activation]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            if batchnorm:
                layers.append(nn.BatchNorm1d(b))
            layers.append(act())
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """conv(1→3, 3×3) → BatchNorm → tanh → linear(48 → 3), on 1×6×6 images."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.bn = nn.BatchNorm2d(3)
        self.head = nn.Linear(3 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.bn(self.conv(x))).flatten(1))


def make_cnn(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    model = SmallCNN()
    with torch.no_grad():  # non-trivial running statistics
        model.bn.running_mean.uniform_(-0.5, 0.5)
        model.bn.running_var.uniform_(0.5, 2.0)
        model.bn.weight.uniform_(0.5, 1.5)
        model.bn.bias.uniform_(-0.2, 0.2)
        model.bn.num_batches_tracked.fill_(7)
    return model


def classification_data(n: int, d_in: int, classes: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d_in, generator=g), torch.randint(0, classes, (n,), generator=g)


def image_data(n: int, seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g)


def snapshot(model: nn.Module) -> dict:
    """Everything about a module that analysis must leave bit-for-bit unchanged."""
    return {
        "state": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "dtypes": {k: v.dtype for k, v in model.state_dict().items()},
        "training": {n: m.training for n, m in model.named_modules()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "grads": {
            n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()
        },
        "ptrs": {k: v.data_ptr() for k, v in model.state_dict().items()},
    }


def assert_unchanged(model: nn.Module, before: dict) -> None:
    after = snapshot(model)
    assert after["training"] == before["training"]
    assert after["requires_grad"] == before["requires_grad"]
    assert after["dtypes"] == before["dtypes"]
    assert after["ptrs"] == before["ptrs"]
    assert before["state"].keys() == after["state"].keys()
    for k, v in before["state"].items():
        assert torch.equal(v, after["state"][k]), f"{k} changed"
    for k, g in before["grads"].items():
        h = after["grads"][k]
        assert (g is None and h is None) or torch.equal(g, h), f"{k}.grad changed"


@pytest.fixture
def tanh_mlp():
    return make_mlp([4, 6, 5, 3], "tanh"), nn.CrossEntropyLoss(), classification_data(20, 4, 3)


@pytest.fixture
def relu_mlp():
    return (
        make_mlp([4, 6, 5, 3], "relu", seed=3),
        nn.CrossEntropyLoss(),
        classification_data(20, 4, 3),
    )


@pytest.fixture
def cnn():
    return make_cnn(), nn.CrossEntropyLoss(), image_data(12)


@pytest.fixture(params=["tanh_mlp", "relu_mlp", "cnn"])
def model_case(request):
    return request.getfixturevalue(request.param)


def deepcopy(x):
    return copy.deepcopy(x)


def data_for(d_in: int, d_out: int, n: int = 15, seed: int = 0, classes: int = 0):
    """Seeded float64 inputs with regression targets (or class labels when ``classes``)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=g, dtype=torch.float64)
    if classes:
        return x, torch.randint(0, classes, (n,), generator=g)
    return x, torch.randn(n, d_out, generator=g, dtype=torch.float64)


@pytest.fixture(scope="module")
def narrow():
    """A strict local minimum of a 2-2-1 tanh MLP (teacher-student with noise), float64."""
    from saddlescope.lifting import train_strict_minimum

    return train_strict_minimum(dataset="teacher-student", hidden=2, n_samples=40, noise=0.1)


def symmetric(eigenvalues: torch.Tensor, seed: int) -> torch.Tensor:
    """Q·diag(λ)·Qᵀ with a seeded random orthogonal Q (float64)."""
    n = eigenvalues.numel()
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return Q @ torch.diag(eigenvalues) @ Q.T


def counts(lam: torch.Tensor, rtol: float) -> tuple[int, int, int]:
    tol = rtol * float(lam.abs().max())
    return int((lam < -tol).sum()), int((lam.abs() <= tol).sum()), int((lam > tol).sum())


def hard_spectrum(seed: int, n: int = 240) -> tuple[torch.Tensor, float]:
    """Known spectra, most with many eigenvalues near zero, and the rtol to count them at."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=g, dtype=torch.float64)
    kind = seed % 4
    if kind == 0:  # neural-net like: |λ| log-uniform over ten decades, a fifth negative
        sign = torch.where(torch.rand(n, generator=g, dtype=torch.float64) < 0.2, -1.0, 1.0)
        lam, rtol = sign * 10 ** (-10 * u), 1e-6
    elif kind == 1:  # an exact null space of 40 % inside a Gaussian bulk
        lam = torch.randn(n, generator=g, dtype=torch.float64)
        lam[: int(0.4 * n)] = 0.0
        rtol = 1e-6
    elif kind == 2:  # a third of the spectrum within a factor 3 of ±tol, a third exactly 0
        lam = 2 * u - 1
        lam[: n // 3] = (6 * u[: n // 3] - 3) * 1e-3
        lam[n // 3 : 2 * n // 3] = 0.0
        rtol = 1e-3
    else:  # gapped: the easy case, where the bars must be tight
        lam = torch.cat(
            [-0.5 - 0.5 * u[: n // 5], torch.zeros(n // 5 + n // 10), 0.5 + 1.5 * u[n // 2 :]]
        )
        rtol = 1e-6
    if kind != 3:
        lam[0] = 1.0  # a known scale
    return lam, rtol
