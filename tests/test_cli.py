"""The command line: the demo end to end, and clean errors."""

from __future__ import annotations

import json

from click.testing import CliRunner

from saddlescope.cli import cli


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
