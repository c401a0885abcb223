"""Classification (saddlescope.classify) against functions whose critical points are known."""

from __future__ import annotations

import pytest
import torch

from conftest import classification_data, make_mlp
from saddlescope import (
    InvalidInputError,
    Objective,
    Tolerance,
    classify,
    find_critical_point,
    toy,
)

F64 = torch.float64


def field(f, w0=(0.0, 0.0)):
    return toy.scalar_objective(f, list(w0))


@pytest.mark.parametrize(
    ("f", "kind", "strict", "counts"),
    [
        (lambda w: w[0] ** 2 + 3 * w[1] ** 2, "minimum", True, (2, 0, 0)),
        (lambda w: -(w[0] ** 2) - w[1] ** 2, "maximum", True, (0, 2, 0)),
        (lambda w: w[0] ** 2 - w[1] ** 2, "saddle", True, (1, 1, 0)),
        (lambda w: w[0] ** 2 + w[1] ** 4, "minimum", False, (1, 0, 1)),
        (lambda w: -(w[0] ** 2) - w[1] ** 4, "maximum", False, (0, 1, 1)),
        (lambda w: w[0] ** 2 + w[1] ** 3, "saddle", False, (1, 0, 1)),  # higher-order saddle
        (lambda w: w[0] ** 3 - 3 * w[0] * w[1] ** 2, "saddle", False, (0, 0, 2)),  # monkey saddle
        (lambda w: w[0] ** 2 - w[1] ** 2 + 0 * w[0], "saddle", True, (1, 1, 0)),
        (lambda w: w[0] ** 2 + 0 * w[1], "degenerate", False, (1, 0, 1)),  # flat valley
    ],
)
def test_known_critical_points(f, kind, strict, counts):
    obj = field(f)
    cp = classify(obj, obj.theta0)
    assert cp.kind == kind and cp.strict is strict, str(cp)
    assert (cp.inertia.n_pos, cp.inertia.n_neg, cp.inertia.n_zero) == counts
    if kind == "saddle":
        u = cp.escape_direction
        assert u is not None and float(torch.linalg.vector_norm(u)) == pytest.approx(1.0)
        assert float(obj.loss(cp.theta + 0.1 * u)) < cp.loss  # the way out really goes down
    else:
        assert cp.escape_direction is None or kind == "maximum"


def test_flat_valley_is_settled_by_a_lower_bound():
    obj = field(lambda w: w[0] ** 2 + 0 * w[1])
    cp = classify(obj, obj.theta0, loss_lower_bound=0.0)
    assert cp.kind == "minimum" and cp.strict is False and "lower bound" in cp.resolution


def test_higher_order_saddle_escapes_along_the_falling_side():
    obj = field(lambda w: w[0] ** 2 + w[1] ** 3)
    cp = classify(obj, obj.theta0)
    assert cp.escape_curvature is None  # no negative eigenvalue: found by probing
    assert torch.allclose(cp.escape_direction, torch.tensor([0.0, -1.0], dtype=F64), atol=1e-12)
    assert any(p.verdict == "fall" for p in cp.probes)


def test_not_critical_still_reports_the_spectrum():
    obj = toy.worked_example_objective()
    cp = classify(obj, torch.tensor([0.5, -0.3], dtype=F64))
    assert cp.kind == "not-critical" and cp.strict is None
    assert cp.spectrum.complete and cp.index is not None
    assert "not a critical point" in cp.resolution
    assert cp.to_dict()["kind"] == "not-critical"


def test_grad_tol_decides_criticality():
    obj = toy.worked_example_objective()
    w = torch.tensor([1e-7, 0.0], dtype=F64)  # ‖g‖ = 2e-7
    assert classify(obj, w).kind == "not-critical"  # the float64 default grad_tol is 1e-8
    assert classify(obj, w, grad_tol=1e-6).kind == "saddle"
    assert classify(obj, w, grad_tol=1e-8).tolerance == Tolerance(1e-8, 1e-6, 0.0)
    near = torch.tensor([1e-9, 0.0], dtype=F64)  # ‖g‖ = 2e-9
    assert classify(obj, near).kind == "saddle"


def test_lanczos_classification_when_dense_does_not_fit():
    model = make_mlp([3, 8, 2], "tanh", seed=1)
    x, y = classification_data(30, 3, 2)
    full = Objective(model, torch.nn.CrossEntropyLoss(), (x, y), dtype=F64)
    res = find_critical_point(full, full.theta0, method="lm")
    assert res.converged
    small = Objective(model, torch.nn.CrossEntropyLoss(), (x, y), dtype=F64, memory_budget=1024)
    exact = classify(full, res.theta)
    approx = classify(small, res.theta, k=3, estimate=False)
    assert approx.spectrum.method == "lanczos"
    assert approx.index is None and approx.minimum_ratio is None  # neither exact nor estimated
    assert approx.kind == exact.kind == "saddle"


def test_result_objects_print_and_serialise():
    obj = toy.worked_example_objective()
    res = find_critical_point(obj, torch.tensor([0.2, -0.1], dtype=F64))
    assert "converged" in str(res) and res.to_dict()["converged"] is True
    cp = classify(obj, res.theta)
    text = str(cp)
    assert "saddle" in text and "index 0.5" in text
    d = cp.to_dict()
    assert (
        d["index"] == 0.5
        and d["spectrum"]["inertia"]["n_neg"] == 1
        and d["objective"]["num_params"] == 2
    )


def test_a_far_fall_does_not_make_a_local_minimum_a_saddle():
    # Quartic rise near 0, sextic fall beyond |w1| ≈ 0.07: a local minimum all the same.
    obj = field(lambda w: w[0] ** 2 + w[1] ** 4 - 200 * w[1] ** 6)
    cp = classify(obj, obj.theta0)
    assert cp.kind == "minimum" and cp.strict is False
    assert any(p.verdict == "fall" for p in cp.probes)  # the far fall was seen, and outweighed


def test_probe_radii_must_not_be_empty():
    obj = field(lambda w: w[0] ** 2 + w[1] ** 4)
    with pytest.raises(InvalidInputError, match="probe_radii"):
        classify(obj, obj.theta0, probe_radii=())


def test_classify_estimates_the_inertia_when_dense_does_not_fit():
    model = make_mlp([4, 16, 3], "tanh", seed=3)
    x, y = classification_data(40, 4, 3)
    full = Objective(model, torch.nn.CrossEntropyLoss(), (x, y), dtype=F64)
    theta = full.theta0
    exact = classify(full, theta, grad_tol=10.0)
    small = Objective(model, torch.nn.CrossEntropyLoss(), (x, y), dtype=F64, memory_budget=1024)
    cp = classify(small, theta, grad_tol=10.0, k=2)
    assert not cp.spectrum.complete and cp.is_estimate and cp.inertia is not None
    assert cp.inertia.covers(exact.inertia.n_neg, exact.inertia.n_zero, exact.inertia.n_pos)
    assert abs(cp.minimum_ratio - exact.minimum_ratio) <= cp.inertia.minimum_ratio_err
    assert "SLQ estimate" in str(cp) and cp.to_dict()["is_estimate"] is True
    assert classify(small, theta, grad_tol=10.0, k=2, estimate=False).index is None
