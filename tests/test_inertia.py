"""The inertia estimate (saddlescope.inertia): its bars cover the truth at their confidence."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from conftest import counts, hard_spectrum, symmetric
from saddlescope import (
    Objective,
)
from saddlescope.inertia import estimate_inertia, inertia_from_density
from saddlescope.slq import SpectralDensity, slq
from saddlescope.spectrum import spectrum_from_matrix

F64 = torch.float64


def trial(seed: int, probes: int, steps: int) -> tuple[SpectralDensity, float, tuple]:
    """SLQ of seed's known spectrum (random eigenvectors), its rtol and its true counts."""
    lam, rtol = hard_spectrum(seed)
    H = symmetric(lam, 1000 + seed)
    sd = slq(H, probes=probes, lanczos_steps=steps, seed=seed)
    return sd, rtol, counts(lam, rtol)


def coverage(variance: str, probes: int, steps: int, trials: int = 40) -> tuple[float, list]:
    estimates = []
    for seed in range(trials):
        sd, rtol, truth = trial(seed, probes, steps)
        est = inertia_from_density(sd, rtol=rtol, variance=variance)
        estimates.append((seed, est, truth))
    return sum(e.covers(*t) for _, e, t in estimates) / trials, estimates


def test_inertia_bars_cover_the_truth_in_95_percent_of_seeded_trials():
    rate, estimates = coverage("bound", probes=1, steps=60)
    assert rate >= 0.95, [(s, str(e), t) for s, e, t in estimates if not e.covers(*t)]
    # … and the bars are informative: tight where the spectrum has a gap around zero …
    gapped = [e for s, e, _ in estimates if s % 4 == 3]
    assert max(e.quadrature[2] for e in gapped) < 1.0  # < one eigenvalue of quadrature slack
    assert max(e.inertia.minimum_ratio_err for e in gapped) < 0.1  # 1.96·√(½/240): sampling only
    # … and well inside [0, 1] on the hard ones
    assert sum(e.inertia.minimum_ratio_err for _, e, _ in estimates) / len(estimates) < 0.35


def test_student_t_bars_from_the_probe_spread_also_cover():
    rate, estimates = coverage("sample", probes=4, steps=30)
    assert rate >= 0.95, [(s, str(e), t) for s, e, t in estimates if not e.covers(*t)]


def test_the_coverage_test_can_fail_without_the_quadrature_allowance():
    """The same runs' Gauss-rule counts ± 1.96 standard errors (no bracket) miss the truth."""
    hits = 0
    for seed in range(40):
        sd, rtol, (n_neg, _, n_pos) = trial(seed, 4, 30)
        tol, n = rtol * sd.scale, sd.num_params
        neg = sd.count(-math.inf, -tol)  # (−∞, −tol]: the Gauss rule's nodes never tie
        pos = sd.count(tol, math.inf)
        hits += (
            abs(n * neg.value - n_neg) <= 1.96 * n * neg.stderr + 0.5
            and abs(n * pos.value - n_pos) <= 1.96 * n * pos.stderr + 0.5
        )
    assert hits / 40 < 0.6


def test_exact_when_lanczos_finds_an_invariant_subspace():
    lam = torch.cat([torch.full((30,), -2.0), torch.zeros(50), torch.full((40,), 1.0)]).to(F64)
    H = symmetric(lam, 7)
    est = estimate_inertia(H, probes=3, lanczos_steps=20)
    assert est.hvps == 9  # three distinct eigenvalues: three steps a probe
    assert est.quadrature == (0, 0, 0)
    assert est.covers(30, 50, 40)
    assert est.scale == pytest.approx(2.0)
    assert est.threshold == pytest.approx(2e-6)


def test_atol_floor_and_tolerance_range():
    lam = torch.cat([torch.linspace(-1, -0.2, 40), torch.full((40,), 0.05), torch.ones(40)])
    H = symmetric(lam.to(F64), 2)
    est = estimate_inertia(H, atol=0.1, lanczos_steps=40)
    assert est.threshold == est.threshold_range[0] == est.threshold_range[1] == 0.1
    assert est.covers(40, 40, 40)
    assert est.inertia.n_zero == pytest.approx(40, abs=est.inertia.error("zero"))


def test_estimate_inertia_on_an_objective_covers_the_dense_counts():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 10), nn.Tanh(), nn.Linear(10, 3))
    obj = Objective(model, nn.MSELoss(), (torch.randn(12, 4), torch.randn(12, 3)), dtype=F64)
    theta = obj.theta0
    exact = spectrum_from_matrix(obj.hessian(theta), eigenvectors=False)
    est = estimate_inertia(obj, theta, lanczos_steps=40, seed=3)
    assert est.hvps == 40
    assert est.covers(exact.inertia.n_neg, exact.inertia.n_zero, exact.inertia.n_pos)
    assert est.rtol == exact.rtol and est.atol == 0.0
    assert est.threshold == pytest.approx(exact.threshold, rel=1e-6)
    d = est.to_dict()
    assert d["inertia"]["n_pos"] == est.inertia.n_pos and d["hvps"] == 40
    assert d["inertia"]["index"] == pytest.approx(est.inertia.n_neg / obj.num_params)
    text = str(est)
    assert "minimum ratio" in text and "n+=" in text and "40 HVPs" in text
    assert str(slq(obj, theta, lanczos_steps=5, probes=2)).startswith("SpectralDensity(n=83")
