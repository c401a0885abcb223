"""Hutchinson and Hutch++ traces (saddlescope.trace) against the exact trace."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import symmetric
from saddlescope import (
    Objective,
)
from saddlescope.trace import hutch_pp_trace, hutchinson_trace

F64 = torch.float64


def test_hutchinson_and_hutch_pp_match_the_exact_trace_within_their_errors():
    g = torch.Generator().manual_seed(4)
    lam = torch.cat([10 * torch.rand(8, generator=g) + 5, 0.1 * torch.randn(192, generator=g)])
    H = symmetric(lam.to(F64), 4)
    exact = float(lam.sum())
    hits_h = hits_pp = 0
    err_h = err_pp = 0.0
    for seed in range(20):
        h = hutchinson_trace(H, products=60, seed=seed)
        pp = hutch_pp_trace(H, products=60, seed=seed)
        assert h.hvps == pp.hvps == 60
        hits_h += abs(h.value - exact) <= 3 * h.stderr
        hits_pp += abs(pp.value - exact) <= 3 * pp.stderr
        err_h += abs(h.value - exact) / 20
        err_pp += abs(pp.value - exact) / 20
    assert hits_h >= 18 and hits_pp >= 18
    assert err_pp < err_h / 5  # the sketch takes the eight large eigenvalues exactly


def test_hutch_pp_is_exact_on_low_rank():
    g = torch.Generator().manual_seed(1)
    U = torch.randn(50, 3, generator=g, dtype=F64)
    H = U @ torch.diag(torch.tensor([3.0, -1.0, 2.0], dtype=F64)) @ U.T
    est = hutch_pp_trace(H, products=12)
    assert est.value == pytest.approx(float(torch.trace(H)), rel=1e-10)
    assert est.stderr == pytest.approx(0.0, abs=1e-9)


def test_traces_on_an_objective():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    obj = Objective(model, nn.MSELoss(), (torch.randn(10, 2), torch.randn(10, 1)), dtype=F64)
    theta = obj.theta0
    exact = float(torch.trace(obj.hessian(theta)))
    h = hutchinson_trace(obj, theta, products=400, seed=0)
    pp = hutch_pp_trace(obj, theta, products=30, seed=0)  # rank ≤ n = 17 ≤ 10: not exact
    assert abs(h.value - exact) <= 4 * h.stderr
    assert abs(pp.value - exact) <= 4 * pp.stderr + 1e-9
