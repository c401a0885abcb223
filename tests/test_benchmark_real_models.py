"""The protocol helpers of ``benchmarks.real_models`` (no anchors, no transformers needed)."""

from __future__ import annotations

import math

import pytest
import torch
from benchmarks.real_models.cases import CausalLMLoss, CifarLike, Inputs, resnet20
from benchmarks.real_models.eigs import iterations_within
from benchmarks.real_models.memory import rss_mib
from benchmarks.real_models.timing import ACCURACY, first_reaching, ritz_extremes


def test_first_reaching_is_the_first_estimate_within_the_accuracy():
    ref = 2.0
    values = [1.0, 1.9, 2.0 * (1 + 2 * ACCURACY), 2.0 * (1 - 0.5 * ACCURACY), 2.0]
    assert first_reaching(values, ref) == 4
    assert first_reaching(values[:3], ref) is None
    assert first_reaching([math.nan, ref], ref) == 2
    assert first_reaching([], ref) is None


def test_ritz_extremes_of_every_prefix():
    g = torch.Generator().manual_seed(0)
    alphas, betas = torch.randn(6, generator=g), torch.rand(5, generator=g) + 0.1
    T = torch.diag(alphas.double()) + torch.diag(betas.double(), 1) + torch.diag(betas.double(), -1)
    top, bottom = ritz_extremes(alphas, betas, "largest"), ritz_extremes(alphas, betas, "smallest")
    assert len(top) == len(bottom) == 6
    assert top[0] == pytest.approx(float(alphas[0])) == bottom[0]
    w = torch.linalg.eigvalsh(T)
    assert top[-1] == pytest.approx(float(w[-1])) and bottom[-1] == pytest.approx(float(w[0]))
    # interlacing: a longer prefix's extremes are never less extreme
    assert all(b >= a - 1e-12 for a, b in zip(top, top[1:]))
    assert all(b <= a + 1e-12 for a, b in zip(bottom, bottom[1:]))


def test_cifar_like_loader_gives_the_same_batches_every_pass_and_stores_none():
    loader = CifarLike(3, 2, seed=4)
    first, second = list(loader), list(loader)
    assert len(loader) == 3 and len(first) == 3
    for (x1, y1), (x2, y2) in zip(first, second):
        assert x1.shape == (2, 3, 32, 32) and y1.shape == (2,)
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(first[0][0], first[1][0])
    assert not torch.equal(first[0][0], next(iter(CifarLike(3, 2, seed=5)))[0])
    assert not any(isinstance(v, torch.Tensor) for v in vars(loader).values())


def test_inputs_answer_size_and_to_as_pyhessian_asks():
    inputs = Inputs({"input_ids": torch.zeros(5, 7, dtype=torch.long), "mask": torch.ones(5, 7)})
    assert inputs.size(0) == 5
    moved = inputs.to("cpu")
    assert isinstance(moved, Inputs) and set(moved) == {"input_ids", "mask"}


def test_causal_lm_loss_is_the_shifted_token_mean():
    g = torch.Generator().manual_seed(1)
    logits, labels = torch.randn(2, 5, 7, generator=g), torch.randint(0, 7, (2, 5), generator=g)
    manual = torch.stack(
        [-torch.log_softmax(logits[b, t], -1)[labels[b, t + 1]] for b in range(2) for t in range(4)]
    ).mean()
    assert float(CausalLMLoss()(logits, labels)) == pytest.approx(float(manual), rel=1e-6)


def test_resnet20_has_the_cifar_resnet20_size_and_runs_on_cifar_shapes():
    model = resnet20()
    assert sum(p.numel() for p in model.parameters()) == 269_722
    assert not model.training
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_iteration_caps_and_peak_memory():
    assert iterations_within(10.0, 100.0, 400) == 100
    assert iterations_within(10.0, 1000.0, 400) == 20  # never below 20
    assert iterations_within(10.0, None, 400) == 400
    assert rss_mib() > 1
