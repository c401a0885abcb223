"""The spectrum's path by estimated time (saddlescope.cost) and progress (saddlescope.progress)."""

from __future__ import annotations

import math
import time

import pytest
import torch

from conftest import classification_data, make_mlp
from saddlescope import InvalidInputError, Objective, classify
from saddlescope.cost import PathChoice, choose_path, eigh_seconds
from saddlescope.operators import MatrixOperator

F64 = torch.float64


class _Slow(MatrixOperator):
    """A matrix whose every product takes at least ``seconds`` (a model with a costly product)."""

    def __init__(self, matrix: torch.Tensor, seconds: float) -> None:
        super().__init__(matrix)
        self.seconds = seconds

    def __matmul__(self, v):
        time.sleep(self.seconds)
        return super().__matmul__(v)


def test_small_problems_go_dense_unmeasured():
    op = MatrixOperator(torch.eye(100, dtype=F64))
    choice = choose_path(op, 120)
    assert choice.method == "dense" and choice.product_seconds is None and op.num_products == 0


@pytest.mark.parametrize(
    ("limit", "method"), [(0.5, "lanczos"), (30.0, "dense"), (math.inf, "dense")]
)
def test_the_path_follows_estimated_seconds(limit, method):
    op = _Slow(torch.eye(400, dtype=F64), 0.01)  # dense ≥ 400 × 10 ms = 4 s; Lanczos ≤ 1.2 s
    choice = choose_path(op, 120, max_dense_seconds=limit)
    assert op.num_products == 2  # the timed product, after one that builds graphs
    assert choice.method == method
    assert choice.product_seconds is not None and choice.product_seconds >= 0.01
    assert choice.dense_seconds > 400 * 0.01 and choice.lanczos_seconds < choice.dense_seconds
    assert "products" in choice.reason and str(choice).startswith(method)
    assert PathChoice(**choice.to_dict()) == choice


def test_no_slower_dense_is_taken_even_past_the_limit():
    op = _Slow(torch.eye(200, dtype=F64), 0.005)  # Lanczos asked for more products than dense
    assert choose_path(op, 500, max_dense_seconds=0.0).method == "dense"


def test_a_dense_hessian_over_the_budget_goes_lanczos_with_an_estimate():
    op = MatrixOperator(torch.eye(300, dtype=F64))
    choice = choose_path(op, 120, fits=False)
    assert choice.method == "lanczos" and "memory budget" in choice.reason
    assert choice.lanczos_seconds is not None and choice.dense_seconds is None


def test_eigh_estimate_grows_cubically():
    assert eigh_seconds(512, F64) == pytest.approx(8 * eigh_seconds(256, F64), rel=1.0)


def _wide_mlp():
    model = make_mlp([6, 40, 20, 3], "tanh", seed=2)  # 1,003 parameters
    x, y = classification_data(24, 6, 3)
    return Objective(model, torch.nn.CrossEntropyLoss(), (x, y), dtype=F64)


def test_classify_goes_iterative_where_dense_would_be_slow_and_says_so():
    obj = _wide_mlp()
    theta = obj.theta0
    # over 1,000 products against at most 120 (not critical: no estimate), with no time allowance
    fast = classify(obj, theta, max_dense_seconds=0.0)
    assert fast.path is not None and fast.path.method == "lanczos"
    assert fast.spectrum.method == "lanczos" and not fast.spectrum.complete
    assert "dense would take over" in str(fast) and fast.to_dict()["path"]["method"] == "lanczos"
    exact = classify(obj, theta, max_dense_seconds=math.inf)
    assert exact.path.method == "dense" and exact.spectrum.complete
    assert fast.kind == exact.kind
    assert classify(obj, theta, k=2).path is None  # the caller chose the path


def test_the_inertia_estimate_runs_at_critical_points_unless_asked():
    obj = _wide_mlp()
    theta = obj.theta0
    not_critical = classify(obj, theta, k=2)
    assert not_critical.kind == "not-critical" and not_critical.inertia_estimate is None
    asked = classify(obj, theta, k=2, estimate=True)
    assert asked.inertia_estimate is not None and asked.is_estimate
    critical = classify(obj, theta, k=2, grad_tol=1e3)  # every point is critical at this tolerance
    assert critical.inertia_estimate is not None


def test_progress_callback_counts_products_and_is_removed_after():
    obj = _wide_mlp()
    seen: list[tuple[int, int, str]] = []
    cp = classify(
        obj, obj.theta0, max_dense_seconds=0.0, estimate=True, progress=lambda *a: seen.append(a)
    )
    stages = {stage for _, _, stage in seen}
    assert stages == {"Lanczos", "inertia estimate"}
    lanczos = [done for done, _, stage in seen if stage == "Lanczos"]
    assert lanczos == sorted(lanczos) and lanczos[-1] == cp.spectrum.hvps
    assert all(done <= total for done, total, _ in seen)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "x", True])
def test_max_dense_seconds_is_checked(bad):
    with pytest.raises(InvalidInputError, match="max_dense_seconds"):
        classify(_wide_mlp(), torch.zeros(1003, dtype=F64), max_dense_seconds=bad)
