"""The command line: the demo end to end, and clean errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from saddlescope.cli import cli
from saddlescope.demo import run_worked_example


def test_demo_writes_table_figures_and_data(tmp_path):
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path), "--grid", "4"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "16/16 converged" in out
    assert "saddle" in out and "minimum" in out
    assert "(-2, 2)" in out  # the saddle's eigenvalues
    assert "predicted" in out and "-0.01" in out
    for name in ("worked_example_surface.png", "worked_example_contour.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    data = json.loads((tmp_path / "worked_example.json").read_text())
    kinds = {p["kind"] for p in data["points"]}
    assert kinds == {"saddle", "minimum"}
    saddle = next(p for p in data["points"] if p["kind"] == "saddle")
    assert (
        saddle["hessian"] == [[0.0, -2.0], [-2.0, 0.0]] or abs(saddle["hessian"][0][1] + 2) < 1e-12
    )


def test_unknown_option_is_a_usage_error():
    result = CliRunner().invoke(cli, ["demo", "--method", "bfgs"])
    assert result.exit_code == 2 and "bfgs" in result.output


def test_worked_example_report_to_dict_and_str():
    report = run_worked_example(grid=3, resolution=5)
    d = json.loads(json.dumps(report.to_dict()))
    assert len(d["searches"]) == 9 and len(d["escape"]) == 3
    check = report.escape[0]
    assert json.loads(json.dumps(check.to_dict())) == {
        "t": check.t,
        "predicted": check.predicted,
        "actual": check.actual,
    }
    assert str(check) == f"t = 0.1: predicted ΔL -0.01, actual {check.actual:.4g}"
    text = str(report)
    converged = sum(s.converged for s in report.searches)
    assert f"{converged}/9 searches converged" in text
    assert f"{len(report.points)} distinct critical points (1 saddle, " in text
    assert "escape along (-0.7071, -0.7071) (λ = -2)" in text or "(0.7071, 0.7071)" in text
    assert "t = 1.414: predicted ΔL -2" in text
    assert len(text.splitlines()) == 2 + len(report.escape)
