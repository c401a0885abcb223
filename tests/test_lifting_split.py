"""The split theorem (saddlescope.lifting.split): In(H_wide) = In(H_narrow) + In(K(λ))."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from conftest import data_for
from saddlescope import InvalidInputError, Objective, classify, hessian_spectrum
from saddlescope.lifting import (
    Inertia,
    inertia_of,
    predicted_inertia,
    split_blocks,
    split_coordinates,
    split_gain_matrix,
    split_objective,
    split_theta,
    train_strict_minimum,
)
from saddlescope.models import mlp

F64 = torch.float64
RATIOS = (-1.0, -0.5, 0.0, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0)


@pytest.fixture(scope="module")
def narrow_multi():
    """A strict local minimum of a 2-2-2 tanh MLP: two outputs, so C_j ≠ 0."""
    return train_strict_minimum(dataset="teacher-student", hidden=2, n_samples=40, d_out=2)


CONGRUENCE = [
    ("tanh 2-3-1 mse", [3], 1, nn.MSELoss(), 0),
    ("tanh 2-3-2-2 mse", [3, 2], 2, nn.MSELoss(), 0),
    ("gelu 2-3-4-3 ce", [3, 4], 3, nn.CrossEntropyLoss(), 3),
]


@pytest.mark.parametrize(("name", "hidden", "d_out", "loss_fn", "classes"), CONGRUENCE)
def test_the_split_hessian_is_congruent_to_narrow_plus_block(name, hidden, d_out, loss_fn, classes):
    act = "gelu" if name.startswith("gelu") else "tanh"
    model = mlp(2, hidden, d_out, activation=act, seed=1)
    obj = Objective(model, loss_fn, data_for(2, d_out, classes=classes))
    theta = obj.theta0  # any θ: the congruence does not need a critical point
    for layer in range(len(hidden)):
        blocks = split_blocks(obj, theta, layer, 1)
        assert float(blocks.gain.abs().max()) > 1e-3 and float(blocks.coupling.abs().max()) > 1e-3
        p, m = [2, *hidden][layer] + 1, [*hidden, d_out][layer + 1]
        assert blocks.gain.shape == (p, p) and blocks.coupling.shape == (p, m)
        for lam in (-0.7, 0.0, 0.3, 1.0, 2.5):
            T = split_coordinates(obj, layer, 1, lam)
            wide = split_objective(obj, layer, 1, lam, theta)
            assert abs(abs(float(torch.linalg.det(T))) - 1) < 1e-12
            lhs = T.mT @ wide.hessian(wide.theta0) @ T
            rhs = torch.block_diag(obj.hessian(theta), blocks.block(lam))
            assert torch.allclose(lhs, rhs, rtol=0, atol=1e-13 * max(1.0, lam * lam)), (layer, lam)


def test_split_gain_matrix_is_the_closed_form_for_a_one_hidden_layer_mse_net(narrow):
    obj, theta = narrow.objective, narrow.theta
    p = obj.unflatten(theta)
    x, y = obj.batches[0].inputs, obj.batches[0].targets
    W, b, V, c = p["0.weight"], p["0.bias"], p["2.weight"], p["2.bias"]
    a = x @ W.mT + b
    f = torch.tanh(a) @ V.mT + c
    delta = 2 * (f - y) / x.shape[0]  # ∂/∂f of the mean squared error over N samples, d_out = 1
    xt = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
    for j in range(2):
        t = torch.tanh(a[:, j])
        s2 = -2 * t * (1 - t * t)  # tanh''
        B = (xt * ((delta @ V[:, j]) * s2)[:, None]).mT @ xt
        C = (xt * (1 - t * t)[:, None]).mT @ delta
        assert torch.allclose(split_gain_matrix(obj, theta, 0, j), B, rtol=1e-12, atol=1e-15)
        assert torch.allclose(split_blocks(obj, theta, 0, j).coupling, C, atol=1e-15)
        assert float(C.abs().max()) < 1e-9  # scalar output: C_j·v_j = ∂L/∂w_j = 0 ⇒ C_j = 0


def test_predicted_inertia_matches_the_dense_spectrum_at_a_strict_minimum(narrow):
    obj, cp = narrow.objective, narrow.critical_point
    assert cp.kind == "minimum" and cp.strict and inertia_of(cp) == Inertia(0, 0, obj.num_params)
    wide = split_objective(obj, 0, 0, 0.5, cp.theta)
    for j in range(2):
        blocks = split_blocks(obj, cp.theta, 0, j)
        eig = blocks.gain_eigenvalues
        tol = 1e-6 * float(eig.abs().max())
        n_neg_b, n_pos_b = int((eig < -tol).sum()), int((eig > tol).sum())
        assert n_neg_b + n_pos_b == 3  # B_j is invertible here (and indefinite)
        for lam in RATIOS:
            spec = hessian_spectrum(wide, split_theta(obj, cp.theta, 0, j, lam))
            observed = spec.inertia
            predicted = predicted_inertia(cp, blocks, lam)
            assert observed == predicted, (j, lam, str(spec))
            # m = 1, C_j = 0: the closed form of the module docstring
            if lam in (0.0, 1.0):
                assert predicted == Inertia(0, 3 + 1, obj.num_params)
            elif 0 < lam < 1:
                assert predicted == Inertia(n_neg_b, 1, obj.num_params + n_pos_b)
            else:
                assert predicted == Inertia(n_pos_b, 1, obj.num_params + n_neg_b)


def test_predicted_inertia_with_a_coupling_block(narrow_multi):
    obj, cp = narrow_multi.objective, narrow_multi.critical_point
    assert cp.kind == "minimum" and cp.strict
    wide = split_objective(obj, 0, 0, 0.5, cp.theta)
    for j in range(2):
        blocks = split_blocks(obj, cp.theta, 0, j)
        s = torch.linalg.svdvals(blocks.coupling)
        assert float(s[0]) > 1e-3 and float(s[-1]) < 1e-8  # rank m − 1 = 1: C_j·v_j = 0
        for lam in (-0.5, 0.0, 0.3, 1.0, 1.7):
            wcp = classify(wide, split_theta(obj, cp.theta, 0, j, lam))
            predicted = predicted_inertia(cp, blocks, lam)
            assert inertia_of(wcp) == predicted, (j, lam, str(wcp))
            assert predicted.n_neg >= 1 and wcp.kind == "saddle"  # a saddle even at λ ∈ {0, 1}


def test_inertia_arithmetic_and_views(narrow):
    cp = narrow.critical_point
    a = inertia_of(cp)
    assert a == inertia_of(cp.spectrum) == inertia_of(a) == cp.inertia and not a.estimated
    assert (a + Inertia(1, 2, 3)).n == a.n + 6
    assert str(Inertia(1, 0, 2)) == "(n-=1, n0=0, n+=2)"
    d = Inertia(1, 0, 2).to_dict()
    assert {k: d[k] for k in ("n_neg", "n_zero", "n_pos")} == {"n_neg": 1, "n_zero": 0, "n_pos": 2}
    lanczos = hessian_spectrum(narrow.objective, cp.theta, k=1, method="lanczos")
    with pytest.raises(InvalidInputError, match="extreme"):
        inertia_of(lanczos)
    with pytest.raises(InvalidInputError, match="Inertia"):
        inertia_of("(0, 0, 9)")  # type: ignore[arg-type]
    blocks = split_blocks(narrow.objective, cp.theta, 0, 0)
    assert "B_j (3, 3)" in str(blocks) and json.dumps(blocks.to_dict())
    # the tolerance decides what counts as zero in K(λ): a huge atol makes the block all zero
    assert predicted_inertia(a, blocks, 0.5, atol=1.0) == a + Inertia(0, 3 + 1, 0)
    assert blocks.block(0.5).shape == (4, 4)
