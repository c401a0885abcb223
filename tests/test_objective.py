"""Objective against ground truth: dense columns, finite differences, batching, modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from conftest import assert_unchanged, deepcopy, snapshot
from saddlescope import InvalidInputError, Objective, hessian_spectrum
from saddlescope.hessian import HessianOperator, columns_per_block

F64 = torch.float64


def _objective(case, **kw):
    model, loss_fn, data = case
    return Objective(model, loss_fn, data, dtype=F64, **kw)


def _theta(obj, seed=0):
    g = torch.Generator().manual_seed(seed)
    return obj.theta0 + 0.1 * torch.randn(obj.num_params, generator=g, dtype=F64)


def test_hvp_equals_dense_columns_and_finite_differences(model_case):
    obj = _objective(model_case)
    theta = _theta(obj)
    H = obj.hessian(theta)
    g = torch.Generator().manual_seed(5)
    for _ in range(3):
        v = torch.randn(obj.num_params, generator=g, dtype=F64)
        hv = obj.hvp(theta, v)
        assert torch.allclose(hv, H @ v, rtol=1e-10, atol=1e-12)
        eps = 1e-6
        fd = (obj.grad(theta + eps * v) - obj.grad(theta - eps * v)) / (2 * eps)
        assert torch.allclose(hv, fd, rtol=1e-5, atol=1e-7 * float(hv.abs().max()))
    # Unit vectors give columns.
    for j in (0, obj.num_params // 2, obj.num_params - 1):
        e = torch.zeros(obj.num_params, dtype=F64)
        e[j] = 1
        assert torch.allclose(obj.hvp(theta, e), H[:, j], rtol=1e-10, atol=1e-12)


def test_gradient_equals_finite_differences(model_case):
    obj = _objective(model_case)
    theta = _theta(obj, 1)
    g = obj.grad(theta)
    v = torch.randn(obj.num_params, generator=torch.Generator().manual_seed(2), dtype=F64)
    eps = 1e-6
    fd = (obj.loss(theta + eps * v) - obj.loss(theta - eps * v)) / (2 * eps)
    assert float(g @ v) == pytest.approx(float(fd), rel=1e-6, abs=1e-9)


def test_hessian_is_symmetric_before_and_after_symmetrisation(model_case):
    obj = _objective(model_case)
    theta = _theta(obj, 2)
    n = obj.num_params
    raw = obj.hessian_operator(theta) @ torch.eye(n, dtype=F64)  # columns straight from HVPs
    assert torch.allclose(raw, raw.T, rtol=1e-10, atol=1e-12 * float(raw.abs().max()))
    H = obj.hessian(theta)
    assert torch.equal(H, H.T)
    assert torch.allclose(H, raw, rtol=1e-10, atol=1e-12 * float(raw.abs().max()))


@pytest.mark.parametrize("batch_size", [7, 5, 1])
def test_batched_objective_equals_full_data(model_case, batch_size):
    model, loss_fn, (x, y) = model_case
    full = Objective(model, loss_fn, (x, y), dtype=F64)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size)  # uneven last batch
    batched = Objective(model, loss_fn, loader, dtype=F64)
    assert batched.num_batches == -(-x.shape[0] // batch_size)
    theta = _theta(full, 3)
    assert float(batched.loss(theta)) == pytest.approx(float(full.loss(theta)), rel=1e-13)
    assert torch.allclose(batched.grad(theta), full.grad(theta), rtol=1e-11, atol=1e-13)
    assert torch.allclose(batched.hessian(theta), full.hessian(theta), rtol=1e-10, atol=1e-12)
    a = batched.linear_operator(theta)
    v = np.random.default_rng(0).standard_normal(full.num_params)
    assert np.allclose(a @ v, full.hvp(theta, torch.from_numpy(v)).numpy(), rtol=1e-10, atol=1e-12)


def test_list_of_batches_and_losses_block(tanh_mlp):
    model, loss_fn, (x, y) = tanh_mlp
    obj = Objective(model, loss_fn, [(x[:3], y[:3]), (x[3:], y[3:])], dtype=F64)
    thetas = torch.stack([_theta(obj, s) for s in range(4)])
    expected = torch.stack([obj.loss(t) for t in thetas])
    assert torch.allclose(obj.losses(thetas), expected, rtol=1e-13, atol=0)


def test_theta0_and_unflatten_follow_named_parameters(cnn):
    model, loss_fn, data = cnn
    obj = Objective(model, loss_fn, data, dtype=F64)
    names = [n for n, _ in model.named_parameters()]
    assert list(obj.param_names) == names
    parts = obj.unflatten(obj.theta0)
    for n, p in model.named_parameters():
        assert torch.equal(parts[n], p.detach().to(F64))
    assert obj.num_params == sum(p.numel() for p in model.parameters())


def test_frozen_parameters_are_held_fixed(tanh_mlp):
    model, loss_fn, data = tanh_mlp
    model = deepcopy(model)
    model[0].weight.requires_grad_(False)
    obj = Objective(model, loss_fn, data, dtype=F64)
    assert "0.weight" not in obj.param_names
    assert obj.num_params == sum(p.numel() for p in model.parameters() if p.requires_grad)
    with torch.no_grad():
        expected = loss_fn(model.double()(data[0].double()), data[1])
    assert float(obj.loss(obj.theta0)) == pytest.approx(float(expected), rel=1e-13)


def test_eval_mode_uses_running_statistics_and_batch_mode_uses_batch_statistics(cnn):
    model, loss_fn, (x, y) = cnn
    reference = deepcopy(model).double()
    with torch.no_grad():
        eval_loss = loss_fn(reference.eval()(x.double()), y)
        train_loss = loss_fn(deepcopy(reference).train()(x.double()), y)
    assert abs(float(eval_loss - train_loss)) > 1e-6  # the two modes really differ here
    running = Objective(model, loss_fn, (x, y), dtype=F64)
    batch = Objective(model, loss_fn, (x, y), dtype=F64, norm_stats="batch")
    assert running.describe()["norm_stats"] == "running"
    assert batch.describe()["norm_stats"] == "batch"
    assert float(running.loss(running.theta0)) == pytest.approx(float(eval_loss), rel=1e-13)
    assert float(batch.loss(batch.theta0)) == pytest.approx(float(train_loss), rel=1e-13)
    # Batch statistics: still a correct Hessian (vs finite differences), twice.
    theta = batch.theta0
    v = torch.randn(batch.num_params, generator=torch.Generator().manual_seed(0), dtype=F64)
    eps = 1e-6
    fd = (batch.grad(theta + eps * v) - batch.grad(theta - eps * v)) / (2 * eps)
    hv = batch.hvp(theta, v)
    assert torch.allclose(hv, fd, rtol=1e-5, atol=1e-7 * float(hv.abs().max()))
    assert torch.equal(batch.hvp(theta, v), hv)  # nothing accumulates between calls


def test_dropout_is_off(tanh_mlp):
    from conftest import classification_data, make_mlp

    model = make_mlp([4, 8, 3], dropout=0.5).train()
    x, y = classification_data(10, 4, 3)
    obj = Objective(model, torch.nn.CrossEntropyLoss(), (x, y), dtype=F64)
    assert torch.equal(obj.loss(obj.theta0), obj.loss(obj.theta0))


def test_float32_default_dtype_and_operator_dtype(tanh_mlp):
    model, loss_fn, data = tanh_mlp
    obj = Objective(model, loss_fn, data)
    assert obj.dtype == torch.float32 and obj.theta0.dtype == torch.float32
    op = obj.linear_operator(obj.theta0)
    assert op.dtype == np.float32
    assert (op @ np.ones(obj.num_params, dtype=np.float32)).dtype == np.float32
    assert op.num_products == 1


@pytest.mark.parametrize("loop_from_bytes", [0, 2**62])
def test_block_products_as_a_loop_or_one_batched_backward_agree(
    model_case, loop_from_bytes, monkeypatch
):
    """Both ways of a block (column loop for large CPU graphs, else one batched backward)
    give the columns of single products."""
    monkeypatch.setattr("saddlescope.hessian._LOOP_GRAPH_BYTES", loop_from_bytes)
    obj = _objective(model_case)
    theta = _theta(obj)
    V = torch.randn(obj.num_params, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    op = obj.hessian_operator(theta)
    block = op @ V
    for j in range(3):
        assert torch.allclose(block[:, j], op @ V[:, j], rtol=1e-12, atol=1e-13)
    assert op.num_products == 6


def test_operator_counts_products(tanh_mlp):
    obj = _objective(tanh_mlp)
    op = obj.linear_operator(obj.theta0)
    op @ np.ones(obj.num_params)
    op @ np.ones((obj.num_params, 3))
    assert op.num_products == 4
    spec = hessian_spectrum(obj, obj.theta0, k=2, which="largest")
    assert spec.hvps >= 2 and spec.method == "lanczos"


def test_graph_bytes_scale_with_the_samples(tanh_mlp):
    model, loss_fn, (x, y) = tanh_mlp
    small = Objective(model, loss_fn, (x[:10], y[:10]), dtype=F64)
    full = Objective(model, loss_fn, (x, y), dtype=F64)
    batched = Objective(model, loss_fn, [(x[:10], y[:10]), (x[10:], y[10:])], dtype=F64)
    b_small, b_full = small.graph_bytes(small.theta0), full.graph_bytes(full.theta0)
    # at least the hidden activations of a forward pass (widths 6 and 5, float64), and linear
    assert b_full >= 20 * (6 + 5) * 8
    assert b_full == pytest.approx(2 * b_small, rel=0.35)
    assert batched.graph_bytes(batched.theta0) == pytest.approx(2 * b_small, rel=1e-12)


def test_gradient_graphs_are_cached_within_the_memory_budget(model_case):
    model, loss_fn, (x, y) = model_case
    per_batch = [(x[i : i + 3], y[i : i + 3]) for i in range(0, 12, 3)]  # four equal batches
    one = Objective(model, loss_fn, per_batch, dtype=F64)
    total = one.graph_bytes(one.theta0)
    assert total is not None and total > 0
    budget = int(0.6 * total)  # room for two of the four batch graphs, not three
    tight = Objective(model, loss_fn, per_batch, dtype=F64, memory_budget=budget)
    theta = _theta(one, 5)
    cached = {
        "default": one.hessian_operator(theta),
        "budget": tight.hessian_operator(theta),
        "all": tight.hessian_operator(theta, cache=True),
        "none": one.hessian_operator(theta, cache=False),
    }
    assert [op.cached_batches for op in cached.values()] == [4, 2, 4, 0]
    v = torch.randn(one.num_params, generator=torch.Generator().manual_seed(1), dtype=F64)
    V = torch.randn(one.num_params, 3, generator=torch.Generator().manual_seed(2), dtype=F64)
    ref_v, ref_V = cached["all"] @ v, cached["all"] @ V
    for op in cached.values():
        assert torch.allclose(op @ v, ref_v, rtol=1e-12, atol=1e-14)
        assert torch.allclose(op @ V, ref_V, rtol=1e-12, atol=1e-14)
    # a single batch is always cached: a product needs its graph in any case
    assert (
        Objective(model, loss_fn, (x, y), dtype=F64, memory_budget=1)
        .hessian_operator(theta)
        .cached_batches
        == 1
    )


def test_dense_hessian_blocks_follow_the_memory_budget():
    n, itemsize, graph = 1000, 4, 100_000
    per_column = graph + 2 * n * itemsize
    assert columns_per_block(n, itemsize, graph, 5 * per_column + 7, cap=n) == 5
    assert columns_per_block(n, itemsize, graph, 10**12, cap=n) == n
    assert columns_per_block(n, itemsize, graph, 10**12, cap=32) == 32
    assert columns_per_block(n, itemsize, graph, 0, cap=n) == 1  # never below one column


class _WithUnused(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = torch.nn.Linear(3, 2)
        self.unused = torch.nn.Linear(3, 2)  # never called in forward

    def forward(self, x):
        return torch.tanh(self.used(x))


class _LinearOnly(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.randn(3, dtype=F64))

    def forward(self, x):
        return (x @ self.w)[:, None]


def test_unused_parameters_and_curvature_free_losses_give_zero_blocks():
    x, y = torch.randn(8, 3, dtype=F64), torch.randn(8, 2, dtype=F64)
    obj = Objective(_WithUnused().double(), torch.nn.MSELoss(), (x, y))
    v = torch.randn(obj.num_params, dtype=F64)
    Hv, H = obj.hvp(obj.theta0, v), obj.hessian(obj.theta0)
    unused = slice(8, 16)  # the second Linear's weight and bias, in named_parameters order
    assert torch.equal(Hv[unused], torch.zeros(8, dtype=F64))
    assert torch.equal(H[unused], torch.zeros(8, obj.num_params, dtype=F64))
    assert torch.allclose(H @ v, Hv, rtol=1e-12, atol=1e-14)
    # a loss linear in θ (its own parameters are constants): H = 0, no error
    weights = torch.nn.Linear(1, 1).double()
    flat = Objective(_LinearOnly(), lambda out, t: weights(out).mean(), (x, y[:, :1]))
    assert torch.equal(flat.hvp(flat.theta0, torch.ones(3, dtype=F64)), torch.zeros(3, dtype=F64))


def test_products_under_no_grad_and_inference_mode_and_after_caller_edits(tanh_mlp):
    obj = _objective(tanh_mlp)
    theta = _theta(obj, 4)
    v = torch.randn(obj.num_params, dtype=F64)
    ref, ref_g = obj.hvp(theta, v), obj.grad(theta)
    with torch.no_grad():
        assert torch.equal(obj.hvp(theta, v), ref)
        assert torch.equal(obj.grad(theta), ref_g)
    with torch.inference_mode():
        assert torch.equal(obj.hvp(theta, v), ref)
        assert torch.equal(obj.grad(theta), ref_g)
        frozen = theta.clone()  # an inference tensor
    assert torch.equal(obj.hvp(frozen, v), ref)
    assert torch.equal(obj.grad(frozen), ref_g)
    op = obj.hessian_operator(theta)
    theta.add_(1.0)  # the caller edits θ in place: the operator keeps H at the θ it was given
    assert torch.allclose(op @ v, ref, rtol=1e-13, atol=1e-15)


def test_dense_hessian_leaves_room_for_itself_when_caching_graphs(model_case):
    model, loss_fn, (x, y) = model_case
    batches = [(x[i : i + 3], y[i : i + 3]) for i in range(0, 12, 3)]
    probe = Objective(model, loss_fn, batches, dtype=F64)
    graphs = probe.graph_bytes(probe.theta0)
    budget = probe.dense_hessian_bytes() + int(0.6 * graphs)  # H plus two of four graphs
    obj = Objective(model, loss_fn, batches, dtype=F64, memory_budget=budget)
    assert obj.hessian_operator(obj.theta0).cached_batches == 4  # all fit beside nothing
    op = HessianOperator(obj, obj.theta0, budget=budget - obj.dense_hessian_bytes())
    assert op.cached_batches == 2  # what hessian() keeps beside H
    assert torch.allclose(obj.hessian(obj.theta0), probe.hessian(probe.theta0), rtol=1e-12)


# ----------------------------------------------------------------------- refresh: follow a model
def test_refresh_takes_the_models_current_values_and_leaves_it_alone(cnn):
    model, loss_fn, data = cnn
    model.conv.bias.requires_grad_(False)  # a frozen parameter: outside θ, must follow too
    obj = Objective(model, loss_fn, data, dtype=F64, norm_stats="running")
    with torch.no_grad():  # training moves parameters, frozen ones and running statistics
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        model.bn.running_mean.add_(0.3)
        model.bn.running_var.mul_(1.5)
    before = snapshot(model)
    theta = obj.refresh(model)
    assert_unchanged(model, before)
    fresh = Objective(model, loss_fn, data, dtype=F64, norm_stats="running")
    assert torch.equal(theta, fresh.theta0) and torch.equal(obj.theta0, theta)
    assert obj.loss(theta) == fresh.loss(theta)  # frozen bias and buffers followed
    assert torch.equal(obj.grad(theta), fresh.grad(theta))
    stale = Objective(deepcopy(model), loss_fn, data, dtype=F64, norm_stats="running")
    with torch.no_grad():
        stale.module.bn.running_mean.sub_(0.3)
    assert stale.loss(theta) != obj.loss(theta)  # the buffers matter: the test can fail


def test_refresh_with_new_data_and_a_param_filter(tanh_mlp):
    model, loss_fn, (x, y) = tanh_mlp
    obj = Objective(model, loss_fn, (x, y), dtype=F64, param_filter=["0.weight"])
    with torch.no_grad():
        model[2].weight.mul_(2.0)  # outside θ: fixed in the objective, but the model moved
    new = [(x[:7], y[:7]), (x[7:15], y[7:15])]
    theta = obj.refresh(model, new)
    fresh = Objective(model, loss_fn, new, dtype=F64, param_filter=["0.weight"])
    assert obj.num_samples == 15 and obj.num_batches == 2
    assert obj.loss(theta) == fresh.loss(theta)
    assert torch.allclose(obj.hessian(theta), fresh.hessian(theta), rtol=0, atol=1e-14)


def test_refresh_refuses_another_model(tanh_mlp):
    model, loss_fn, data = tanh_mlp
    obj = Objective(model, loss_fn, data)
    with pytest.raises(InvalidInputError, match=r"no '0.weight' of shape \(6, 4\)"):
        obj.refresh(torch.nn.Sequential(torch.nn.Linear(3, 6)))
