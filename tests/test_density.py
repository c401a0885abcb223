"""SLQ density, Hutchinson/Hutch++ traces and the inertia estimate against dense eigh."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from saddlescope import (
    CallableOperator,
    InvalidInputError,
    MatrixOperator,
    NonFiniteError,
    Objective,
)
from saddlescope.inertia import estimate_inertia, inertia_from_density
from saddlescope.lanczos import lanczos_tridiag
from saddlescope.runtime import one_thread
from saddlescope.slq import SpectralDensity, radau_bracket, slq
from saddlescope.spectrum import spectrum_from_matrix
from saddlescope.trace import hutch_pp_trace, hutchinson_trace

F64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    """Small matrices: thread hand-offs cost more than they save, badly so on a busy machine."""
    with one_thread():
        yield


def symmetric(eigenvalues: torch.Tensor, seed: int) -> torch.Tensor:
    n = eigenvalues.numel()
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=F64))
    return Q @ torch.diag(eigenvalues) @ Q.T


def counts(lam: torch.Tensor, rtol: float) -> tuple[int, int, int]:
    tol = rtol * float(lam.abs().max())
    return int((lam < -tol).sum()), int((lam.abs() <= tol).sum()), int((lam > tol).sum())


# ============================================================================ spectra
def hard_spectrum(seed: int, n: int = 240) -> tuple[torch.Tensor, float]:
    """Known spectra, most with many eigenvalues near zero, and the rtol to count them at."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, generator=g, dtype=F64)
    kind = seed % 4
    if kind == 0:  # neural-net like: |λ| log-uniform over ten decades, a fifth negative
        sign = torch.where(torch.rand(n, generator=g, dtype=F64) < 0.2, -1.0, 1.0)
        lam, rtol = sign * 10 ** (-10 * u), 1e-6
    elif kind == 1:  # an exact null space of 40 % inside a Gaussian bulk
        lam = torch.randn(n, generator=g, dtype=F64)
        lam[: int(0.4 * n)] = 0.0
        rtol = 1e-6
    elif kind == 2:  # a third of the spectrum within a factor 3 of ±tol, a third exactly 0
        lam = 2 * u - 1
        lam[: n // 3] = (6 * u[: n // 3] - 3) * 1e-3
        lam[n // 3 : 2 * n // 3] = 0.0
        rtol = 1e-3
    else:  # gapped: the easy case, where the bars must be tight
        lam = torch.cat(
            [-0.5 - 0.5 * u[: n // 5], torch.zeros(n // 5 + n // 10), 0.5 + 1.5 * u[n // 2 :]]
        )
        rtol = 1e-6
    if kind != 3:
        lam[0] = 1.0  # a known scale
    return lam, rtol


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


# ============================================================================ inertia coverage
@functools.cache
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


# ============================================================================ SLQ density
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


# ============================================================================ traces
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


# ============================================================================ objective inertia
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


# ============================================================================ bad input
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
