"""Half-precision models: float32 recurrences, the products' error, and refused verdicts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from saddlescope import Objective, classify, hessian_spectrum, product_error
from saddlescope.errors import InvalidInputError
from saddlescope.precision import PrecisionCheck, require_precision


def _saddle_at_zero(dtype: torch.dtype) -> Objective:
    """A tanh MLP at θ = 0 with centred targets: a critical point (a saddle)."""
    torch.manual_seed(0)
    x, y = torch.randn(64, 5), torch.randn(64, 2)
    y = y - y.mean(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 2))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return Objective(model, nn.MSELoss(), (x, y), dtype=dtype)


def _mlp(dtype: torch.dtype) -> Objective:
    torch.manual_seed(0)
    x, y = torch.randn(64, 6), torch.randn(64, 3)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    return Objective(model, nn.MSELoss(), (x, y), dtype=dtype)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_runs_its_recurrences_in_float32(dtype: torch.dtype) -> None:
    obj, ref = _mlp(dtype), _mlp(torch.float64)
    op = obj.hessian_operator(obj.theta0)
    assert op.dtype == torch.float32 and (op @ torch.ones(obj.num_params)).dtype == torch.float32
    got = hessian_spectrum(obj, obj.theta0, k=1, method="lanczos").eigenvalues
    dense = hessian_spectrum(obj, obj.theta0, method="dense").eigenvalues  # eigh in float32
    want = torch.linalg.eigvalsh(ref.hessian(ref.theta0))
    err = product_error(obj, obj.theta0).error
    scale = float(want.abs().max())
    for spectrum in (got, dense):  # Weyl: within ‖E‖₂ (and Lanczos' own 1e-5·scale)
        assert abs(float(spectrum[0]) - float(want[0])) <= err + 1e-4 * scale
        assert abs(float(spectrum[-1]) - float(want[-1])) <= err + 1e-4 * scale


def test_the_product_error_estimates_the_dense_difference() -> None:
    obj = _mlp(torch.bfloat16)
    check = product_error(obj, obj.theta0, steps=8)
    ref = _mlp(torch.float32)
    exact = float(torch.linalg.matrix_norm(obj.hessian(obj.theta0) - ref.hessian(ref.theta0), 2))
    assert 0.5 * exact <= check.error <= 1.01 * exact and check.hvps == 16
    assert product_error(_mlp(torch.float64), torch.zeros(99, dtype=torch.float64)).error == 0.0


def test_a_half_precision_saddle_is_classified_when_its_error_cannot_flip_it() -> None:
    obj = _saddle_at_zero(torch.bfloat16)
    point = classify(obj, obj.theta0)
    assert point.kind == "saddle"


@pytest.mark.bad_input
def test_a_verdict_the_rounding_could_flip_is_refused() -> None:
    ref = _saddle_at_zero(torch.float64)
    lam = torch.linalg.eigvalsh(ref.hessian(ref.theta0))
    rtol = abs(float(lam[0])) / float(lam.abs().max())  # the zero band's edge at λ_min
    obj = _saddle_at_zero(torch.bfloat16)
    with pytest.raises(InvalidInputError, match="verdict could flip"):
        classify(obj, obj.theta0, rtol=rtol)
    with pytest.raises(InvalidInputError, match="λ_max"):
        require_precision(PrecisionCheck("bfloat16", 0.1, 8), -1.0, 0.25, 0.2)
    require_precision(PrecisionCheck("bfloat16", 0.1, 8), -1.0, 1.0, 0.2)  # far from both


def test_half_precision_point_with_a_degenerate_spectrum_is_probed() -> None:
    # The probes take gᵀu along the zero band's eigenvectors, which are in the curvature's
    # working dtype (float32); the gradient of a bfloat16 model must meet them there.
    obj = _mlp(torch.bfloat16)
    cp = classify(obj, obj.theta0, grad_tol=1e6, rtol=0.3, k=2)
    assert cp.kind == "degenerate" and cp.probes
