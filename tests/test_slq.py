"""Stochastic Lanczos quadrature (saddlescope.slq) against dense eigh and Markov–Krein bounds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import hard_spectrum, symmetric
from saddlescope import (
    CallableOperator,
    InvalidInputError,
    MatrixOperator,
    NonFiniteError,
    Objective,
)
from saddlescope.inertia import estimate_inertia, inertia_from_density
from saddlescope.lanczos import lanczos_tridiag
from saddlescope.slq import radau_bracket, slq
from saddlescope.trace import hutch_pp_trace, hutchinson_trace

F64 = torch.float64


def test_radau_brackets_hold_every_probe_measure():
    """Markov–Krein: lower ≤ μ_z((−∞, t)) ≤ μ_z((−∞, t]) ≤ upper, for any moments count."""
    for seed in range(60):
        lam, _ = hard_spectrum(seed, n=120)
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(lam.numel(), generator=g, dtype=F64)
        z /= z.norm()
        steps = 2 + seed % 30
        (tri,) = lanczos_tridiag(MatrixOperator(torch.diag(lam)), z, steps)
        for t in (0.0, 1e-6, -1e-6, 1e-3, -3e-3, 0.3, float(torch.randn(1, generator=g))):
            lo, hi = radau_bracket(tri, t)
            below = float(z[lam < t].pow(2).sum())
            upto = float(z[lam <= t].pow(2).sum())
            assert lo - 1e-12 <= below <= upto <= hi + 1e-12, (seed, steps, t)


def test_block_lanczos_matches_the_single_vector_lanczos():
    lam = torch.linspace(-2, 3, 90, dtype=F64)
    H = symmetric(lam, 3)
    sd = slq(H, lanczos_steps=25, probes=3, seed=5)
    g = torch.Generator().manual_seed(5)
    signs = (torch.randint(0, 2, (90, 3), generator=g, dtype=torch.int8) * 2 - 1).to(F64)
    for k in range(3):
        (ref,) = lanczos_tridiag(MatrixOperator(H), signs[:, k], 25)
        assert torch.allclose(sd.tridiagonals[k].alpha, ref.alpha, atol=1e-12)
        assert torch.allclose(sd.tridiagonals[k].beta, ref.beta, atol=1e-12)
    assert sd.hvps == 75
    assert torch.allclose(sd.weights.sum(dim=1), torch.ones(3, dtype=F64))


def test_density_integrates_to_one_and_cdf_matches_a_dense_histogram():
    g = torch.Generator().manual_seed(0)
    lam = torch.cat([torch.randn(300, generator=g, dtype=F64), 4 + torch.rand(100, generator=g)])
    H = symmetric(lam.to(F64), 0)
    sd = slq(H, seed=1)  # defaults: 10 probes × 80 steps
    assert (sd.probes, sd.lanczos_steps, sd.hvps) == (10, 80, 800)
    grid = torch.linspace(float(lam.min()) - 2, float(lam.max()) + 2, 4001, dtype=F64)
    assert float(torch.trapezoid(sd.density(grid), grid)) == pytest.approx(1.0, abs=1e-6)
    assert float(torch.trapezoid(sd.density(grid, sigma=0.05), grid)) == pytest.approx(1, abs=1e-6)
    for x in (-1.5, -0.5, 0.0, 0.7, 2.5, 4.5):
        est = sd.cdf(x)
        truth = float((lam <= x).to(F64).mean())
        assert abs(est.value - truth) <= 3 * est.stderr + 0.01, (x, est, truth)
        lo, hi = sd.cdf_bracket(x)
        assert float(lo.mean()) - 3 * est.stderr <= truth <= float(hi.mean()) + 3 * est.stderr
    both = sd.count(-0.5, 0.7)
    assert both.value == pytest.approx(sd.cdf(0.7).value - sd.cdf(-0.5).value)


def test_density_on_an_objective_counts_its_products():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))
    x, y = torch.randn(20, 3), torch.randn(20, 2)
    obj = Objective(model, nn.MSELoss(), (x, y), dtype=F64)
    theta = obj.theta0
    sd = slq(obj, theta, lanczos_steps=12, probes=3, seed=2)
    assert sd.hvps == 36 and sd.num_params == obj.num_params == 38
    dense = torch.linalg.eigvalsh(obj.hessian(theta))
    assert sd.scale <= float(dense.abs().max()) + 1e-12
    assert sd.scale == pytest.approx(float(dense.abs().max()), rel=1e-6)


def test_bad_input_is_refused_with_what_to_do():
    H = torch.eye(5, dtype=F64)
    mv = MatrixOperator(H)
    cases = [
        (lambda: CallableOperator(lambda v: H @ v, 0), "dimension"),
        (lambda: CallableOperator(lambda v: H @ v, 5.0), "dimension"),
        (lambda: slq("H"), "operator"),
        (lambda: slq(lambda v: H @ v), "CallableOperator"),
        (lambda: slq(H, 5), "only for an Objective"),
        (lambda: slq(mv, lanczos_steps=0), "steps"),
        (lambda: slq(mv, probes=0), "probes"),
        (lambda: slq(CallableOperator(lambda v: v[:3], 5)), "length 5"),
        (lambda: slq(mv).density([[0.0]]), "1-D"),
        (lambda: slq(mv).density([0.0], sigma=-1), "sigma"),
        (lambda: slq(mv).count(1.0, 0.0), "a ≤ b"),
        (lambda: hutchinson_trace(mv, products=1), "products"),
        (lambda: hutch_pp_trace(mv, products=3), "products"),
        (lambda: estimate_inertia(mv, confidence=1.0), "confidence"),
        (lambda: estimate_inertia(mv, rtol=2.0), "rtol"),
        (lambda: estimate_inertia(mv, variance="guess"), "variance"),
        (lambda: estimate_inertia(mv, variance="sample"), "more probes"),
        (lambda: inertia_from_density(slq(mv), rtol=-1.0), "rtol"),
    ]
    for call, words in cases:
        with pytest.raises(InvalidInputError, match=words):
            call()
    with pytest.raises(NonFiniteError, match="NaN"):
        slq(CallableOperator(lambda v: v * float("nan"), 5))
    torch.manual_seed(0)
    obj = Objective(nn.Linear(2, 1), nn.MSELoss(), (torch.randn(4, 2), torch.randn(4, 1)))
    with pytest.raises(InvalidInputError, match="θ"):
        slq(obj, 3)
    with pytest.raises(InvalidInputError, match="length 3"):
        estimate_inertia(obj, torch.zeros(5))
