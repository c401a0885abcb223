"""Which parameters θ holds (saddlescope.params): blocks, tied weights, legacy weight_norm."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import assert_unchanged, snapshot
from saddlescope import InvalidInputError, Objective, classify

F64 = torch.float64


def mlp_and_data():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).to(F64)
    x, y = torch.randn(10, 3, dtype=F64), torch.randn(10, 2, dtype=F64)
    return model, (x, y)


def block_of(full: Objective, block: Objective) -> torch.Tensor:
    """The rows and columns of the full θ that the block's θ holds."""
    starts, pos = {}, 0
    for name, shape in zip(full.param_names, full.param_shapes):
        starts[name] = (pos, pos + int(torch.Size(shape).numel()))
        pos = starts[name][1]
    return torch.cat([torch.arange(*starts[n]) for n in block.param_names])


@pytest.mark.parametrize(
    "param_filter",
    [
        ["2.weight", "2.bias"],
        lambda name, p: name.startswith("2."),
        "module",
    ],
)
def test_a_block_hessian_is_the_sub_block_of_the_full_hessian(param_filter):
    model, data = mlp_and_data()
    before = snapshot(model)
    chosen = model[2] if param_filter == "module" else param_filter
    block = Objective(model, nn.MSELoss(), data, param_filter=chosen)
    full = Objective(model, nn.MSELoss(), data)
    assert block.param_names == ("2.weight", "2.bias") and block.num_params == 10
    ix = block_of(full, block)
    H = full.hessian(full.theta0)
    assert torch.allclose(block.hessian(block.theta0), H[ix][:, ix], rtol=1e-12, atol=1e-14)
    assert torch.allclose(block.grad(block.theta0), full.grad(full.theta0)[ix])
    cp = classify(block, block.theta0, grad_tol=10.0)
    assert cp.spectrum.num_params == 10
    assert_unchanged(model, before)


def test_a_filter_that_names_nothing_is_a_clear_error():
    model, data = mlp_and_data()
    with pytest.raises(InvalidInputError, match="did you mean"):
        Objective(model, nn.MSELoss(), data, param_filter=["2.weigth"])
    with pytest.raises(InvalidInputError, match="selects no"):
        Objective(model, nn.MSELoss(), data, param_filter=lambda n, p: False)
    with pytest.raises(InvalidInputError, match="selects no"):
        Objective(model, nn.MSELoss(), data, param_filter=nn.Linear(2, 2))
    model[0].bias.requires_grad_(False)
    with pytest.raises(InvalidInputError, match="requires_grad=False"):
        Objective(model, nn.MSELoss(), data, param_filter=["0.bias"])
    with pytest.raises(InvalidInputError, match="param_filter must be"):
        Objective(model, nn.MSELoss(), data, param_filter=3)


class Tied(nn.Module):
    """An embedding and an output layer that share one weight (as GPT-2's)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(7, 3)
        self.out = nn.Linear(3, 7, bias=False)
        self.out.weight = self.emb.weight

    def forward(self, ids):
        return self.out(torch.tanh(self.emb(ids).mean(1)))


def test_tied_weights_appear_once_and_their_curvature_counts_both_uses():
    torch.manual_seed(0)
    model = Tied().to(F64)
    ids, y = torch.randint(0, 7, (6, 4)), torch.randint(0, 7, (6,))
    obj = Objective(model, nn.CrossEntropyLoss(), (ids, y))
    assert obj.param_names == ("emb.weight",) and obj.num_params == 21
    theta = obj.theta0
    v = torch.randn(21, dtype=F64)
    h = 1e-5
    fd = (obj.grad(theta + h * v) - obj.grad(theta - h * v)) / (2 * h)
    assert torch.allclose(obj.hvp(theta, v), fd, rtol=1e-5, atol=1e-9)
    # the tied name selects the shared parameter
    block = Objective(model, nn.CrossEntropyLoss(), (ids, y), param_filter=["out.weight"])
    assert block.param_names == ("emb.weight",)


def weight_normed(legacy: bool) -> nn.Module:
    torch.manual_seed(0)
    wrap = nn.utils.weight_norm if legacy else nn.utils.parametrizations.weight_norm
    model = nn.Sequential(wrap(nn.Linear(3, 2)), nn.Tanh(), nn.Linear(2, 1)).to(F64)
    model(torch.randn(2, 3, dtype=F64))  # computes the hook's weight, as after any forward
    return model


def fd_of_plain_autograd(model: nn.Module, x, y, h: float = 1e-5) -> float:
    """max |H·v − FD| of torch's own double backward through the model (no saddlescope)."""
    ps = list(model.parameters())
    v = [torch.randn_like(p) for p in ps]

    def grads():
        return torch.autograd.grad(nn.functional.mse_loss(model(x), y), ps, create_graph=True)

    hv = torch.autograd.grad(grads(), ps, v)
    with torch.no_grad():
        for p, d in zip(ps, v):
            p.add_(h * d)
    plus = [t.detach() for t in grads()]
    with torch.no_grad():
        for p, d in zip(ps, v):
            p.sub_(2 * h * d)
    minus = [t.detach() for t in grads()]
    with torch.no_grad():
        for p, d in zip(ps, v):
            p.add_(h * d)
    return max(float((a - (b - c) / (2 * h)).abs().max()) for a, b, c in zip(hv, plus, minus))


@pytest.mark.parametrize("legacy", [True, False])
def test_torchs_fused_weight_norm_has_a_wrong_second_derivative(legacy):
    """Why params.own_copy composes weight norms itself: if torch fixes this, it may stop."""
    model = weight_normed(legacy)
    x, y = torch.randn(8, 3, dtype=F64), torch.randn(8, 1, dtype=F64)
    assert fd_of_plain_autograd(model, x, y) > 1e-3


@pytest.mark.parametrize("legacy", [True, False])
def test_weight_norm_is_copied_and_differentiated_correctly(legacy):
    model = weight_normed(legacy)
    before = snapshot(model)
    x, y = torch.randn(8, 3, dtype=F64), torch.randn(8, 1, dtype=F64)
    obj = Objective(model, nn.MSELoss(), (x, y))
    assert len(obj.param_names) == 5
    want = nn.functional.mse_loss(model(x), y)
    assert float(obj.loss(obj.theta0)) == pytest.approx(float(want.detach()), rel=1e-12)
    theta, v, h = obj.theta0, torch.randn(obj.num_params, dtype=F64), 1e-5
    fd = (obj.grad(theta + h * v) - obj.grad(theta - h * v)) / (2 * h)
    assert torch.allclose(obj.hvp(theta, v), fd, rtol=1e-5, atol=1e-9)
    assert_unchanged(model, before)
