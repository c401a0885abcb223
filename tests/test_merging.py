"""Stacking batches of one shape into one gradient graph (saddlescope.merging).

Stacked products must equal the weighted sum of per-batch products, and stacking must be
refused where the loss is not a weighted mean of per-sample terms.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import classification_data, make_mlp
from saddlescope import InvalidInputError, Objective
from saddlescope.batches import Batch
from saddlescope.merging import mergeable_runs, merged, stack_key, stacking_agrees

F64 = torch.float64


def _batch(data, index=0, weight=0.25, kind="pair"):
    return Batch(data, kind, weight, index)


def test_stack_key_needs_one_structure_and_per_sample_tensors():
    x, y = torch.randn(3, 4), torch.arange(3)
    same = stack_key(_batch((torch.randn(5, 4), torch.arange(5))))
    assert stack_key(_batch((x, y))) == same  # only the leading dimension may differ
    assert stack_key(_batch((torch.randn(3, 5), y))) != same  # another feature size
    assert stack_key(_batch((x.double(), y))) != same  # another dtype
    shared = {"x": x, "mask": torch.ones(7, 7)}  # an entry not per sample: cannot stack
    assert stack_key(_batch(shared, kind="dict")) is None
    with_flag = {"x": x, "flag": True}
    assert stack_key(_batch(with_flag, kind="dict")) != stack_key(
        _batch({"x": x, "flag": False}, kind="dict")
    )


def test_runs_are_consecutive_and_merged_keeps_order_and_weight():
    a = _batch((torch.zeros(2, 3), torch.zeros(2)), 0, 0.2)
    b = _batch((torch.ones(3, 3), torch.ones(3)), 1, 0.3)
    odd = _batch((torch.ones(2, 4), torch.ones(2)), 2, 0.1)
    c = _batch((torch.full((1, 3), 2.0), torch.full((1,), 2.0)), 3, 0.4)
    runs = mergeable_runs([a, b, odd, c])
    assert [[x.index for x in r] for r in runs] == [[0, 1], [2], [3]]
    m = merged(runs[0])
    assert m.weight == pytest.approx(0.5) and m.index == 0 and m.kind == "pair"
    assert torch.equal(m.inputs[:, 0], torch.tensor([0.0, 0, 1, 1, 1]))
    assert merged(runs[1]) is odd


def _split(x, y, sizes):
    out, start = [], 0
    for s in sizes:
        out.append((x[start : start + s], y[start : start + s]))
        start += s
    return out


def _per_batch_hvp(model, loss_fn, batches, theta, v, **kw):
    """Σ_b w_b H_b v from one objective per batch (no stacking possible)."""
    total = sum(len(b[1]) for b in batches)
    return sum(
        len(b[1]) / total * Objective(model, loss_fn, b, dtype=F64, **kw).hvp(theta, v)
        for b in batches
    )


def test_stacked_products_equal_the_sum_of_batch_products():
    model, (x, y) = make_mlp([4, 6, 5, 3], "tanh"), classification_data(20, 4, 3)
    batches = _split(x, y, [6, 6, 5, 3])
    obj = Objective(model, nn.CrossEntropyLoss(), batches, dtype=F64)
    theta = obj.theta0 + 0.1 * torch.randn(obj.num_params, dtype=F64)
    op = obj.hessian_operator(theta)
    assert (op.cached_batches, op.num_graphs) == (4, 1)
    v = torch.randn(obj.num_params, dtype=F64)
    ref = _per_batch_hvp(model, nn.CrossEntropyLoss(), batches, theta, v)
    assert torch.allclose(op @ v, ref, rtol=1e-12, atol=1e-14)
    V = torch.randn(obj.num_params, 3, dtype=F64)
    assert torch.allclose(op @ V, torch.stack([op @ V[:, j] for j in range(3)], 1), rtol=1e-12)


class _Centred(nn.Module):
    """A loss that compares the samples of a batch: the batch mean is subtracted."""

    def forward(self, out, y):
        return ((out - out.mean(0)) ** 2).mean()


@pytest.mark.parametrize(
    "loss_fn", [nn.CrossEntropyLoss(reduction="sum"), _Centred()], ids=["sum", "batch-coupled"]
)
def test_losses_that_are_not_per_sample_means_are_refused_or_never_stacked(loss_fn):
    model, (x, y) = make_mlp([4, 6, 5, 3], "tanh"), classification_data(20, 4, 3)
    batches = _split(x, y, [6, 6, 5, 3])
    with pytest.raises(InvalidInputError, match="not a per-sample mean"):
        Objective(model, loss_fn, batches, dtype=F64)
    obj = Objective(model, loss_fn, batches, dtype=F64, per_sample_mean=False)
    theta = obj.theta0
    op = obj.hessian_operator(theta)
    assert (op.cached_batches, op.num_graphs) == (4, 4)
    v = torch.randn(obj.num_params, dtype=F64)
    ref = _per_batch_hvp(model, loss_fn, batches, theta, v, per_sample_mean=False)
    assert torch.allclose(op @ v, ref, rtol=1e-12)


def test_batch_statistics_are_never_stacked():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 3))
    x, y = classification_data(16, 4, 3)
    batches = _split(x, y, [8, 8])
    obj = Objective(model, nn.CrossEntropyLoss(), batches, dtype=F64, norm_stats="batch")
    assert obj.hessian_operator(obj.theta0).num_graphs == 2
    running = Objective(model, nn.CrossEntropyLoss(), batches, dtype=F64)
    assert running.hessian_operator(running.theta0).num_graphs == 1


def test_stacking_check_compares_with_the_weighted_mean():
    batches = [_batch((torch.full((2, 1), float(i)), torch.zeros(2)), i, 0.5) for i in range(2)]
    runs = mergeable_runs(batches)
    mean = stacking_agrees(runs, lambda b: b.data[0].mean())
    total = stacking_agrees(runs, lambda b: b.data[0].sum())
    assert mean and not total
    assert stacking_agrees([[batches[0]], [batches[1]]], lambda b: b.data[0].sum())


def test_streamed_data_keeps_no_graphs_by_default():
    model, (x, y) = make_mlp([4, 6, 5, 3], "tanh"), classification_data(20, 4, 3)
    batches = _split(x, y, [10, 10])
    obj = Objective(model, nn.CrossEntropyLoss(), batches, dtype=F64, hold_data=False)
    held = Objective(model, nn.CrossEntropyLoss(), batches, dtype=F64)
    op = obj.hessian_operator(obj.theta0)
    v = torch.randn(obj.num_params, dtype=F64)
    assert torch.allclose(op @ v, held.hvp(held.theta0, v), rtol=1e-12)
    assert op.cached_batches == 0 and obj.hessian_operator(obj.theta0, cache=True).num_graphs == 1


def test_stacked_gradients_equal_the_sum_of_batch_gradients():
    model, (x, y) = make_mlp([4, 6, 5, 3], "tanh"), classification_data(20, 4, 3)
    batches = _split(x, y, [6, 6, 5, 3])
    loss_fn = nn.CrossEntropyLoss()
    obj = Objective(model, loss_fn, batches, dtype=F64)
    theta = obj.theta0 + 0.1 * torch.randn(obj.num_params, dtype=F64)
    assert len(list(obj._graphs.for_gradient(theta))) == 1
    loss, g = obj.loss_and_grad(theta)
    parts = [Objective(model, loss_fn, b, dtype=F64).loss_and_grad(theta) for b in batches]
    weights = [len(b[1]) / 20 for b in batches]
    assert float(loss) == pytest.approx(sum(w * float(v) for w, (v, _) in zip(weights, parts)))
    assert torch.allclose(g, sum(w * gb for w, (_, gb) in zip(weights, parts)), rtol=1e-12)
    tight = Objective(model, loss_fn, batches, dtype=F64, memory_budget=1, hold_data=True)
    assert len(list(tight._graphs.for_gradient(theta))) == 4  # they do not fit: batch by batch
    assert torch.allclose(tight.grad(theta), g, rtol=1e-12)


def test_stacked_runs_are_capped_by_graph_size():
    from saddlescope.merging import Stacking

    batches = [_batch((torch.full((2, 1), float(i)), torch.zeros(2)), i, 0.25) for i in range(4)]
    stacking = Stacking(lambda theta, b: b.data[0].mean())
    mib = 1024**2
    theta = torch.zeros(1)
    assert [b.weight for b in stacking.stack(theta, batches, None, mib)] == [1.0]
    assert [b.weight for b in stacking.stack(theta, batches, 128 * mib, mib)] == [0.5, 0.5]
    assert stacking.stack(theta, batches, 256 * mib, mib) == batches  # 64 MiB: one batch each
    assert (
        Stacking(lambda theta, b: b.data[0].mean(), enabled=False).stack(theta, batches, None, mib)
        == batches
    )
