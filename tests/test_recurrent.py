"""nn.GRU and nn.LSTM through every public call that evaluates the loss at many θ.

``torch.func.vmap`` has no batching rule for the fused recurrent kernels (``aten::gru.input``,
``aten::lstm.input``); :meth:`Objective.losses` then evaluates the rows one by one. Each call is
checked against plain torch: the loss at a θ is the weighted mean of batch losses of a copy of
the model with θ written into its parameters.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import real_models as rm
from saddlescope import (
    Objective,
    SaddleEscape,
    classify,
    compare_escapes,
    escape_saddle,
    find_critical_point,
    landscape,
    slice_1d,
    slice_2d,
)

F64 = torch.float64
CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


def _case(name, seed=0, targets=None):
    """A 2 → 2 recurrent regressor (39 or 51 parameters) on two batches of length-3 sequences."""
    torch.manual_seed(seed)
    model = rm.RNNRegressor(CELLS[name], d_in=2, hidden=2).double()
    g = torch.Generator().manual_seed(seed + 1)
    batches = []
    for n in (3, 2):
        x = torch.randn(n, 3, 2, generator=g, dtype=F64)
        y = torch.randn(n, 1, generator=g, dtype=F64) if targets is None else targets(n)
        batches.append((x, y))
    return model, nn.MSELoss(), batches


def _plain_loss(model, loss_fn, batches, theta):
    """Σ n_b·ℓ_b / Σ n_b with θ written into a copy of the model, in plain torch."""
    m = copy.deepcopy(model).eval()
    nn.utils.vector_to_parameters(theta.detach().clone(), m.parameters())
    with torch.no_grad():
        total = sum(len(x) * loss_fn(m(x), y) for x, y in batches)
    return float(total) / sum(len(x) for x, _ in batches)


def _objective(name, **kw):
    model, loss_fn, batches = _case(name, **kw)
    return Objective(model, loss_fn, batches), (model, loss_fn, batches)


def _directions(n, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g, dtype=F64), torch.randn(n, generator=g, dtype=F64)


@pytest.mark.parametrize("name", CELLS)
def test_vmap_has_no_rule_for_the_recurrent_kernel(name):
    model, _, batches = _case(name)
    with pytest.raises(RuntimeError, match="Batching rule not implemented"):
        torch.func.vmap(model)(torch.stack([batches[1][0]] * 2))  # so the loop is what runs


@pytest.mark.parametrize("name", CELLS)
def test_landscape_slices(name):
    obj, (model, loss_fn, batches) = _objective(name)
    theta = obj.theta0
    d1, d2 = _directions(obj.num_params)
    ln = landscape.line(obj, theta, d1, [0.1, -0.2])
    expected = [_plain_loss(model, loss_fn, batches, theta + a * d1) for a in (0.1, -0.2)]
    assert ln.losses.tolist() == pytest.approx(expected, rel=1e-12)
    assert ln.origin_loss == pytest.approx(_plain_loss(model, loss_fn, batches, theta), rel=1e-12)
    pl = landscape.plane(obj, theta, d1, d2, [0.1, 0.2], [0.3])
    at = _plain_loss(model, loss_fn, batches, theta + 0.2 * d1 + 0.3 * d2)
    assert pl.losses.shape == (1, 2) and float(pl.losses[0, 1]) == pytest.approx(at, rel=1e-12)
    s1 = slice_1d(obj, theta, d1, span=0.5, num=3)
    assert float(s1.losses[0]) == pytest.approx(
        _plain_loss(model, loss_fn, batches, theta - 0.5 * d1), rel=1e-12
    )
    s2 = slice_2d(obj, theta, d1, d2, span=0.5, num=3)
    assert float(s2.losses[1, 1]) == pytest.approx(s1.losses[1].item(), rel=1e-12)  # θ itself


@pytest.mark.parametrize("name", CELLS)
def test_escape_saddle_and_compare_escapes(name):
    obj, (model, loss_fn, batches) = _objective(name)
    # Every step is a curvature step (the loss evaluated along the eigenvector).
    res = escape_saddle(obj, obj.theta0, max_steps=2, options={"stall_grad_norm": 1e3})
    assert [s.action for s in res.path[1:]] == ["curvature", "curvature"]
    assert res.loss < res.path[0].loss
    assert res.loss == pytest.approx(_plain_loss(model, loss_fn, batches, res.theta), rel=1e-12)
    results = compare_escapes(obj, obj.theta0, max_steps=2)
    assert [r.method for r in results] == ["curvature", "perturbed-gd", "saddle-free-newton", "gd"]
    for r in results:
        assert r.loss == pytest.approx(_plain_loss(model, loss_fn, batches, r.theta), rel=1e-12)


@pytest.mark.parametrize("name", CELLS)
def test_classify_probes_a_degenerate_point(name):
    model, loss_fn, batches = _case(name, targets=lambda n: torch.full((n, 1), 0.3, dtype=F64))
    with torch.no_grad():  # a zero state predicting the constant target: L = 0, H of rank 1
        for p in model.parameters():
            p.zero_()
        model.head.bias.fill_(0.3)
    obj = Objective(model, loss_fn, batches)
    cp = classify(obj, obj.theta0)
    assert cp.spectrum.inertia.n_zero == obj.num_params - 1 and len(cp.probes) > 0
    assert cp.kind in ("degenerate", "minimum")  # L ≥ 0 = L(θ): never a fall
    assert all(p.delta_loss >= 0 and p.verdict != "fall" for p in cp.probes)


@pytest.mark.parametrize("name", CELLS)
def test_find_critical_point(name):
    obj, (model, loss_fn, batches) = _objective(name)
    search = find_critical_point(obj, obj.theta0, max_steps=2, minres_maxiter=10)
    assert search.loss < obj.loss(obj.theta0).item()
    assert search.loss == pytest.approx(
        _plain_loss(model, loss_fn, batches, search.theta), rel=1e-12
    )


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("closure", [True, False])
def test_saddle_escape_steps(name, closure):
    model, loss_fn, batches = _case(name)
    x, y = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    base = torch.optim.SGD(model.parameters(), lr=0.0)  # only the escape moves the model
    opt = SaddleEscape(base, model, loss_fn, batches, window=1, stall_grad_norm=1e3, loss_tol=1e3)

    def grads():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss

    theta = nn.utils.parameters_to_vector(model.parameters()).detach()
    before = _plain_loss(model, loss_fn, batches, theta)
    if closure:
        opt.step(grads)
    else:
        grads()
        opt.step()
    event = opt.events[0]
    assert event.action == "escaped" and event.loss_before == pytest.approx(before, rel=1e-12)
    theta = nn.utils.parameters_to_vector(model.parameters()).detach()
    assert _plain_loss(model, loss_fn, batches, theta) == pytest.approx(event.loss_after, rel=1e-12)
    assert event.loss_after < before
