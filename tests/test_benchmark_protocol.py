"""The comparison protocol of ``benchmarks.compare``: every method is timed at (nearly) the
smallest budget that reaches the accuracy, not at the next coarse rung of its ladder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from benchmarks.compare import ACCURACY, between, search
from benchmarks.compare_anchors import Estimate, Problem, Solver

REF = np.array([1.0])


def fake_solver(error_of_budget, ladder: list, calls: list) -> Solver:
    """A solver whose relative error is a known function of its budget (one "HVP" per call)."""

    def run(problem: Problem, target: str, budget) -> Estimate:
        calls.append((budget, problem.seed))
        return Estimate(REF * (1 + error_of_budget(budget)), hvps=1)

    return Solver("fake", "fake", "fake", "budget", {"top1": ladder}, run)


@pytest.fixture
def problem() -> Problem:
    return Problem("t", "tiny", torch.nn.Linear(2, 1), torch.zeros(4, 2), torch.zeros(4, 1))


def test_iterations_are_bisected_to_within_ten_percent(problem):
    calls: list = []
    need = 1 / ACCURACY  # error 1/steps: 1000 steps reach the accuracy, 999 do not
    solver = fake_solver(lambda steps: 1 / steps, [10, 100, 2000, 5000], calls)
    out = search(solver, problem, "top1", REF, repeats=1, cap_s=60, time_budget_s=0.1, seeds=2)
    assert out["reached"]
    assert need <= out["budget"] <= 1.1 * need
    assert 5000 not in {b for b, _ in calls}  # the ladder stops at the first rung that reaches
    assert {s for _, s in calls} == {0, 1}  # every probe runs every seed


def test_tolerances_are_refined_to_within_a_factor_1_2(problem):
    calls: list = []
    solver = fake_solver(lambda tol: tol / 3, [1e-1, 1e-2, 1e-3, 1e-4], calls)
    out = search(solver, problem, "top1", REF, repeats=1, cap_s=60, time_budget_s=0.1)
    assert out["reached"]
    assert 3e-3 / 1.2 <= out["budget"] <= 3e-3
    assert all(
        entry["err"] <= ACCURACY for entry in out["ladder"] if entry["budget"] == out["budget"]
    )


def test_first_rung_reaching_is_not_refined(problem):
    calls: list = []
    solver = fake_solver(lambda steps: 0.0, [10, 20], calls)
    out = search(solver, problem, "top1", REF, repeats=1, cap_s=60, time_budget_s=0.1)
    assert out["budget"] == 10 and [e["budget"] for e in out["ladder"]] == [10]


def test_unreached_ladder_is_reported(problem):
    solver = fake_solver(lambda steps: 1.0, [10, 20], [])
    out = search(solver, problem, "top1", REF, repeats=1, cap_s=60, time_budget_s=0.1)
    assert not out["reached"] and out["budget"] == 20 and "end of the ladder" in out["note"]


@pytest.mark.parametrize(
    ("failed", "reached", "expected"),
    [(30, 40, 35), (36, 40, None), (9, 10, None), (1e-2, 1e-3, 3.2e-3), (3.6e-3, 3e-3, None)],
)
def test_between(failed, reached, expected):
    assert between(failed, reached) == expected
