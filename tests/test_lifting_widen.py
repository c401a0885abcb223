"""Function-preserving widening (lifting.widen, .layout, .views): split a unit, add a unit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import assert_unchanged, data_for, make_cnn, snapshot
from saddlescope import InvalidInputError, Objective, toy
from saddlescope.lifting import (
    add_neuron,
    module_at,
    split_blocks,
    split_neuron,
    split_objective,
    split_theta,
)
from saddlescope.models import mlp

F64 = torch.float64


MODELS = [
    ("tanh 2-3-1", lambda: mlp(2, [3], 1, seed=0), 2, 1),
    ("gelu 3-4-3-2", lambda: mlp(3, [4, 3], 2, activation="gelu", seed=1), 3, 2),
    ("relu 3-4-3-2", lambda: mlp(3, [4, 3], 2, activation="relu", seed=2), 3, 2),
    (
        "no bias",
        lambda: nn.Sequential(
            nn.Linear(2, 3, bias=False), nn.Tanh(), nn.Linear(3, 2, bias=False)
        ).double(),
        2,
        2,
    ),
]


@pytest.mark.parametrize(("name", "build", "d_in", "d_out"), MODELS, ids=[m[0] for m in MODELS])
def test_split_and_add_preserve_the_function_and_leave_the_model_alone(name, build, d_in, d_out):
    model = build()
    model.train()
    x = data_for(d_in, d_out, n=20)[0]
    model(x).square().sum().backward()  # .grad set: it must survive too
    with torch.no_grad():
        y = model(x)
    before = snapshot(model)
    rng = torch.get_rng_state()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for layer in range(len(linears) - 1):
        width = linears[layer].out_features
        for neuron in range(width):
            for lam in (-1.3, 0.0, 0.5, 0.7, 1.0, 2.0):
                wide = split_neuron(model, layer, neuron, lam)
                assert wide is not model and wide.training
                w = [m for m in wide if isinstance(m, nn.Linear)]
                assert w[layer].out_features == width + 1 and w[layer + 1].in_features == width + 1
                with torch.no_grad():
                    out = wide(x)
                assert torch.allclose(out, y, rtol=0, atol=1e-12), (layer, neuron, lam)
                if lam == 0.5:
                    assert torch.equal(w[layer].weight[-1], linears[layer].weight[neuron])
                    assert torch.equal(w[layer + 1].weight[:, -1], w[layer + 1].weight[:, neuron])
        size = linears[layer].in_features + (linears[layer].bias is not None)
        for incoming in (None, torch.arange(size) * 0.3):
            wide = add_neuron(model, layer, incoming, seed=4)
            with torch.no_grad():
                out = wide(x)
            assert torch.allclose(out, y, rtol=0, atol=1e-12)
            w = [m for m in wide if isinstance(m, nn.Linear)]
            assert bool((w[layer + 1].weight[:, -1] == 0).all())
    assert_unchanged(model, before)
    assert torch.equal(torch.get_rng_state(), rng)  # the global random stream is not drawn from


def test_add_neuron_is_seeded_and_keeps_requires_grad_flags():
    model = mlp(2, [3], 1, seed=0)
    model[0].bias.requires_grad_(False)
    a, b, c = (add_neuron(model, 0, seed=s) for s in (1, 1, 2))
    assert torch.equal(a[0].weight, b[0].weight) and not torch.equal(a[0].weight, c[0].weight)
    assert a[0].bias.requires_grad is False and a[0].weight.requires_grad is True
    assert split_neuron(model, 0, 1)[0].bias.requires_grad is False
    assert model[0].bias.requires_grad is False and model[0].weight.shape == (3, 2)


def test_split_maps_a_critical_point_to_a_critical_point(narrow):
    obj, cp = narrow.objective, narrow.critical_point
    assert cp.grad_norm <= 1e-10
    for j in range(2):
        for lam in (-0.5, 0.0, 0.3, 1.0, 1.7):
            wide_model = split_neuron(narrow.model, 0, j, lam)
            wide = Objective(wide_model, nn.MSELoss(), [(b.inputs, b.targets) for b in obj.batches])
            loss, g = wide.loss_and_grad(wide.theta0)
            assert float(torch.linalg.vector_norm(g)) <= 1e-10 * max(1.0, abs(lam)) * 3
            assert float(loss) == pytest.approx(cp.loss, rel=1e-13)
            # the flat-vector map agrees with the module map
            assert torch.equal(split_theta(obj, cp.theta, 0, j, lam), wide.theta0)
            assert torch.equal(split_objective(obj, 0, j, lam, cp.theta).theta0, wide.theta0)


def test_add_neuron_keeps_criticality_only_when_the_new_unit_is_silent(narrow):
    obj, cp = narrow.objective, narrow.critical_point
    data = [(b.inputs, b.targets) for b in obj.batches]
    # A constant unit (zero input weights, any bias): its output folds into the next bias.
    const = Objective(add_neuron(narrow.model, 0, [0.0, 0.0, 0.7]), nn.MSELoss(), data)
    assert float(torch.linalg.vector_norm(const.grad(const.theta0))) <= 1e-9
    # A copy of unit 0's incoming weights is the split with λ = 1.
    w, b = narrow.model[0].weight[0], narrow.model[0].bias[:1]
    copy_ = Objective(add_neuron(narrow.model, 0, torch.cat([w, b])), nn.MSELoss(), data)
    assert torch.allclose(copy_.theta0, split_theta(obj, cp.theta, 0, 0, 1.0), atol=0, rtol=0)
    assert float(torch.linalg.vector_norm(copy_.grad(copy_.theta0))) <= 1e-9
    # A random unit: the gradient is zero except along the new outgoing weight.
    rand = Objective(add_neuron(narrow.model, 0, seed=0), nn.MSELoss(), data)
    g = rand.unflatten(rand.grad(rand.theta0))
    assert abs(float(g["2.weight"][0, -1])) > 1e-4
    rest = torch.cat([t.reshape(-1) for n, t in g.items() if n != "2.weight"])
    assert float(rest.abs().max()) <= 1e-9 and float(g["2.weight"][0, :-1].abs().max()) <= 1e-9


# ============================================================================ bad input
def test_non_mlp_models_are_refused():
    bad = [
        make_cnn(),
        nn.Linear(2, 3),  # not a Sequential
        nn.Sequential(nn.Linear(2, 3)),  # no hidden layer
        nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Tanh(), nn.Linear(3, 1)),
        nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Tanh(), nn.Linear(3, 1)),
        nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1), nn.Tanh()),
        nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=-1), nn.Linear(3, 1)),
    ]
    for model in bad:
        before = snapshot(model)
        with pytest.raises(InvalidInputError, match="MLP"):
            split_neuron(model, 0, 0)
        with pytest.raises(InvalidInputError, match="MLP"):
            add_neuron(model, 0)
        assert_unchanged(model, before)
    obj = toy.worked_example_objective()
    with pytest.raises(InvalidInputError, match="MLP"):
        split_blocks(obj, obj.theta0, 0, 0)


def test_out_of_range_and_malformed_arguments_are_refused():
    model = mlp(2, [3, 4], 1)
    cases = [
        (lambda: split_neuron(model, 2, 0), "layer = 2 is out of range: the model has 2 hidden"),
        (lambda: split_neuron(model, -1, 0), "layer = -1 is out of range"),
        (lambda: split_neuron(model, 0, 3), "neuron = 3 is out of range"),
        (lambda: split_neuron(model, 1, 4), "neuron = 4 is out of range"),
        (lambda: split_neuron(model, 1.0, 0), "layer must be an integer"),
        (lambda: split_neuron(model, 0, True), "neuron must be an integer"),
        (lambda: split_neuron(model, 0, 0, float("nan")), "ratio must be finite"),
        (lambda: split_neuron(model, 0, 0, "half"), "ratio must be a real number"),
        (lambda: add_neuron(model, 5), "layer = 5 is out of range"),
        (lambda: add_neuron(model, 0, [1.0, 2.0]), "length fan_in \\+ 1 = 3"),
        (lambda: add_neuron(model, 0, [1.0, float("inf"), 0.0]), "NaN or Inf"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            call()
    obj = Objective(model, nn.MSELoss(), data_for(2, 1))
    with pytest.raises(InvalidInputError, match="layer = 3"):
        split_theta(obj, obj.theta0, 3, 0, 0.5)
    with pytest.raises(InvalidInputError, match="neuron = 9"):
        split_blocks(obj, obj.theta0, 0, 9)
    with pytest.raises(InvalidInputError, match="length"):
        split_theta(obj, torch.zeros(3), 0, 0, 0.5)
    frozen = mlp(2, [3], 1)
    frozen[0].weight.requires_grad_(False)
    fobj = Objective(frozen, nn.MSELoss(), data_for(2, 1))
    with pytest.raises(InvalidInputError, match="frozen"):
        split_objective(fobj, 0)


def test_module_at_is_a_fresh_copy(narrow):
    obj = narrow.objective
    theta = obj.theta0 + 1.0
    m = module_at(obj, theta)
    assert m is not obj.module and all(p.requires_grad for p in m.parameters())
    assert torch.equal(Objective(m, nn.MSELoss(), data_for(2, 1)).theta0, theta)
    assert torch.equal(obj.theta0, narrow.objective.theta0)
    assert not any(p.requires_grad for p in obj.module.parameters())
