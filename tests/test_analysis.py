"""One analysis (saddlescope.analysis) and the ``saddlescope analyze`` command on example models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from click.testing import CliRunner

from saddlescope import toy
from saddlescope.analysis import FORMAT, analyze
from saddlescope.cli import cli

F64 = torch.float64


def test_the_worked_example_saddle_record():
    a = analyze(toy.worked_example_objective(), torch.zeros(2))
    r = a.to_dict()
    assert r["format"] == FORMAT and r["verdict"]["kind"] == "saddle"
    assert r["verdict"]["inertia"] == {"n_neg": 1, "n_zero": 0, "n_pos": 1}
    assert [e["value"] for e in r["extremes"]] == [-2.0, 2.0]
    assert [e["end"] for e in r["extremes"]] == ["lowest", "highest"]
    assert (
        r["escape"]["curvature"] == -2.0 and r["escape"]["predicted_decrease_at_unit_step"] == -1.0
    )
    assert r["path"]["method"] == "dense" and r["density"]["source"] == "eigenvalues"
    grid, values = torch.tensor(r["density"]["grid"]), torch.tensor(r["density"]["values"])
    assert abs(float(torch.trapezoid(values, grid)) - 1.0) < 0.02  # a density: mass 1
    # L = (1 − w1·w2)² along the escape direction u = (1, 1)/√2 (or its negative): 1 − t² + t⁴/4,
    # and its quadratic model 1 − t²
    t, loss, quad = (torch.tensor(r["landscape"][k], dtype=F64) for k in ("t", "loss", "quadratic"))
    assert torch.allclose(loss, 1 - t**2 + t**4 / 4, atol=1e-12)
    assert torch.allclose(quad, 1 - t**2, atol=1e-12)
    json.dumps(r)  # plain values only
    assert "saddle" in str(a)


def test_a_partial_spectrum_gets_an_slq_density():
    from conftest import classification_data, make_mlp
    from saddlescope import Objective

    model, (x, y) = make_mlp([4, 12, 3], "tanh", seed=1), classification_data(30, 4, 3)
    obj = Objective(model, torch.nn.CrossEntropyLoss(), (x, y), dtype=F64)
    r = analyze(obj, k=2, landscape=False).to_dict()
    d = r["density"]
    assert d["source"] == "slq" and d["probes"] == 4 and d["hvps"] > 0
    assert r["landscape"] is None and r["path"]["why"] == "k extreme pairs asked for"
    assert math.isclose(
        float(torch.trapezoid(torch.tensor(d["values"]), torch.tensor(d["grid"]))),
        1.0,
        abs_tol=0.05,
    )


def test_analyze_command_on_the_example_cnn_and_a_checkpoint(tmp_path: Path):
    from examples.factories import small_cnn

    model = small_cnn()
    with torch.no_grad():
        model.head.bias.fill_(0.5)
    torch.save(model.state_dict(), tmp_path / "cnn.pt")
    out = tmp_path / "cnn.json"
    args = [
        "analyze",
        "--model",
        "examples.factories:small_cnn",
        "--data",
        "examples.factories:cnn_batches",
        "--loss",
        "torch.nn:CrossEntropyLoss",
        "--checkpoint",
        str(tmp_path / "cnn.pt"),
        "--k",
        "2",
        "--no-density",
        "--json",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "verdict" in result.output and "path" in result.output
    r = json.loads(out.read_text())
    assert r["model"]["checkpoint"] == str(tmp_path / "cnn.pt") and r["model"]["num_params"] == 956
    assert r["verdict"]["kind"] in {"not-critical", "saddle", "minimum"}
    assert len(r["extremes"]) == 4 and r["density"] is None


def test_analyze_command_on_the_example_bert_block(tmp_path: Path):
    out = tmp_path / "bert.json"
    args = [
        "analyze",
        "--model",
        "examples.factories:tiny_bert",
        "--data",
        "examples.factories:bert_batches",
        "--param-filter",
        "classifier",
        "--json",
        str(out),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    r = json.loads(out.read_text())
    assert r["model"]["num_params"] == 16 * 3 + 3 and r["path"]["method"] == "dense"
    assert r["model"]["loss"].startswith("the model's own")


def test_analyze_command_refuses_what_it_cannot_use(tmp_path: Path):
    (tmp_path / "evil.pt").write_bytes(b"not a checkpoint at all")
    args = [
        "analyze",
        "--model",
        "examples.factories:small_cnn",
        "--data",
        "examples.factories:cnn_batches",
        "--checkpoint",
        str(tmp_path / "evil.pt"),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert "weights-only" in str(result.exception)
