"""The dimension effect end to end (lifting.experiment, .report) and ``saddlescope lift``."""

from __future__ import annotations

import json

import pytest

from saddlescope import InvalidInputError, SaddlescopeError
from saddlescope.lifting import (
    EscapeRecord,
    Inertia,
    LiftReport,
    SplitRow,
    lift_experiment,
    train_strict_minimum,
)


@pytest.fixture(scope="module")
def report():
    return lift_experiment()


def test_lift_experiment_turns_a_minimum_into_saddles_and_escapes_below_it(report):
    assert isinstance(report, LiftReport)
    assert report.narrow_min_eigenvalue > report.narrow_threshold > 0
    assert report.narrow_loss > 0 and report.wide_params == report.narrow_params + 4
    assert len(report.rows) == 2 * 6 and report.all_match
    assert any(r.kind == "saddle" and r.observed.n_neg > 0 for r in report.rows)
    assert report.restricted_kind == "minimum"
    e = report.escape
    assert e is not None and report.escaped_below
    assert e.saddle_loss == pytest.approx(report.narrow_loss, rel=1e-12)
    assert e.loss_after_step < e.saddle_loss and e.loss_final < report.narrow_loss
    assert e.curvature < 0
    text = str(report)
    assert "strict minimum" in text and "predicted" in text and "✓" in text and "✗" not in text
    d = report.to_dict()
    assert json.loads(json.dumps(d))["all_match"] is True and len(d["rows"]) == 12


def test_lift_experiment_is_deterministic(report):
    again = lift_experiment()
    assert again.to_dict() | {"seconds": 0} == report.to_dict() | {"seconds": 0}


def test_malformed_experiment_arguments_are_refused():
    with pytest.raises(InvalidInputError, match="ratios"):
        lift_experiment(ratios=())
    with pytest.raises(InvalidInputError, match="hidden"):
        lift_experiment(hidden=(2, 2))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="unknown dataset"):
        train_strict_minimum(dataset="digits")
    with pytest.raises(SaddlescopeError, match="no strict local minimum"):
        train_strict_minimum(dataset="sinc", hidden=2, max_seeds=1, train_steps=1)


def test_cli_lift(tmp_path):
    import json

    from click.testing import CliRunner

    from saddlescope.cli import cli

    res = CliRunner().invoke(cli, ["lift", "--out", str(tmp_path), "--ratio", "0.5"])
    assert res.exit_code == 0, res.output
    assert "saddle" in res.output and "✓" in res.output
    data = json.loads((tmp_path / "lift.json").read_text())
    assert data


def test_narrow_minimum_to_dict_and_str(narrow):
    cp = narrow.critical_point
    d = json.loads(json.dumps(narrow.to_dict()))
    assert d["widths"] == [2, 2, 1] and d["seed"] == narrow.seed
    assert d["seeds_tried"] == narrow.seeds_tried
    assert d["objective"]["num_params"] == narrow.objective.num_params == 9
    assert d["critical_point"]["kind"] == "minimum" and d["critical_point"]["loss"] == cp.loss
    text = str(narrow)
    assert "strict minimum" in text and "MLP 2-2-1" in text and "9 params" in text
    assert "40 samples" in text and f"loss {cp.loss:.6g}" in text
    assert f"seed {narrow.seed} ({narrow.seeds_tried} tried)" in text


def test_split_row_and_escape_record_to_dict_and_str():
    row = SplitRow(0, 1.5, "saddle", Inertia(1, 1, 8), Inertia(1, 1, 8), 3e-11, -0.0123)
    d = json.loads(json.dumps(row.to_dict()))
    counts = {"n_neg": 1, "n_zero": 1, "n_pos": 8}
    assert d["matches"] is True and {k: d["predicted"][k] for k in counts} == counts
    assert {k: d["observed"][k] for k in counts} == counts
    text = str(row)
    assert text.startswith("unit 0, λ = 1.5: saddle (n-=1, n0=1, n+=8)")
    assert "predicted (n-=1, n0=1, n+=8) ✓" in text and "-0.0123" in text
    bad = SplitRow(1, 0.5, "minimum", Inertia(0, 1, 9), Inertia(1, 1, 8), 1e-11, 0.5)
    assert "✗" in str(bad) and bad.to_dict()["matches"] is False
    e = EscapeRecord(0, 1.5, 0.0421, -0.0123, 0.8, 0.0405, 0.0125, 2e-9, 57)
    d = json.loads(json.dumps(e.to_dict()))
    assert d["loss_final"] == 0.0125 and d["evaluations"] == 57
    text = str(e)
    assert "unit 0, λ = 1.5" in text and "curvature -0.0123" in text
    assert "0.0421 → 0.0405" in text and "57 evaluations" in text and "→ 0.0125" in text
