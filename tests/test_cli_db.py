"""``escape --db`` and ``landscape --db``: stored runs served as stored, whatever wrote them."""

from __future__ import annotations

import dataclasses
import sqlite3
import sys

import pytest
import torch
from click.testing import CliRunner

import saddlescope.pictures
from saddlescope.cli import cli, main
from saddlescope.survey import (
    DataConfig,
    ModelConfig,
    ResultStore,
    SearchConfig,
    StudyConfig,
    TrainConfig,
    Verdict,
    run_study,
)


def tiny() -> StudyConfig:
    return StudyConfig(
        name="tiny",
        seeds=1,
        data=DataConfig(n_samples=32, d_in=3, teacher_hidden=2),
        model=ModelConfig(hidden=((2,), (3,))),
        train=TrainConfig(steps=(0, 40)),
        search=SearchConfig(max_steps=60),
    )


@pytest.fixture(scope="module")
def old_db(tmp_path_factory):
    """A study written under another torch version."""
    db = tmp_path_factory.mktemp("old") / "old.db"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(torch, "__version__", "1.0.0+written-long-ago")
        run_study(tiny(), db)
    return db


def test_escape_db_serves_a_database_of_another_torch_version(old_db, tmp_path):
    with ResultStore(old_db, readonly=True) as store:
        saddles = [r for r in store.records() if r.usable and r.kind == "saddle"]
    assert saddles and all(r.versions["torch"] != torch.__version__ for r in saddles)
    args = ["escape", "--db", str(old_db), "--saddles", "1", "--max-steps", "50"]
    res = CliRunner().invoke(cli, [*args, "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert "stored verdict of run" in res.output and "saddle" in res.output
    assert len(list(tmp_path.glob("escape_*.png"))) == 2


def test_landscape_db_verdict_equals_the_stored_verdict(old_db, tmp_path, monkeypatch):
    seen = []
    real = saddlescope.pictures.classify

    def spy(*args, **kwargs):
        seen.append(real(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(saddlescope.pictures, "classify", spy)
    with ResultStore(old_db, readonly=True) as store:
        records = store.records()
    saddle = next(r for r in records if r.kind == "saddle")
    other = next(r for r in records if r.kind != "saddle")
    for record in (saddle, other):
        seen.clear()
        args = ["landscape", "--db", str(old_db), "--run", record.run_id, "--no-html"]
        res = CliRunner().invoke(cli, [*args, "--out", str(tmp_path)])
        assert res.exit_code == 0, res.output
        (cp,) = seen
        assert cp.tolerance == record.tolerance  # not a CLI default
        assert Verdict.of(cp) == record.verdict  # kind, strictness, inertia, threshold
        assert f"run {record.run_id}: {record.kind}" in res.output


def test_landscape_db_unknown_run_is_a_clean_error(old_db, tmp_path):
    res = CliRunner().invoke(cli, ["landscape", "--db", str(old_db), "--run", "nope"])
    assert res.exit_code != 0 and "no run 'nope'" in str(res.exception)


def test_database_and_config_text_is_printed_literally(tmp_path):
    body = (
        "seeds = 1\n[data]\nn_samples = 16\nd_in = 2\n"
        "teacher_hidden = 1\n[model]\nhidden = [[2]]\n[train]\nsteps = [0]\n"
        "[search]\nmax_steps = 20\n"
    )
    runner = CliRunner()
    for name in ("[/bold] [red]odd", "../../escaped", "/tmp/abs", "a\\u0000b"):
        bad = tmp_path / "bad.toml"
        bad.write_text(f'name = "{name}"\n' + body)
        res = runner.invoke(cli, ["survey", str(bad), "--out", str(tmp_path / "out")])
        assert res.exit_code != 0 and "plain file name" in str(res.exception), name
    assert not (tmp_path / "escaped.db").exists() and not (tmp_path / "out").exists()
    config = tmp_path / "odd.toml"
    config.write_text('name = "odd"\n' + body)
    db = tmp_path / "odd.db"
    res = runner.invoke(cli, ["survey", str(config), "--db", str(db), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    with sqlite3.connect(db) as con:  # a crafted database: markup and an ANSI escape in its text
        con.execute("UPDATE studies SET name = ?", ("[/bold] [red]odd\x1b[2J",))
    res = runner.invoke(cli, ["survey", "show", str(db)])
    assert res.exit_code == 0, res.output
    assert "studies: [/bold] [red]odd" in res.output and "\x1b[2J" not in res.output


def test_main_prints_error_text_literally(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "[/x] [red]missing.toml"
    monkeypatch.setattr(sys, "argv", ["saddlescope", "survey", str(missing)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    out = capsys.readouterr().out
    assert "error:" in out and "[/x] [red]missing.toml" in out


def test_record_dataclass_fields_are_all_stored(old_db):
    with ResultStore(old_db, readonly=True) as store:
        r = store.records()[0]
    names = {f.name for f in dataclasses.fields(r)}
    assert {"spec", "tolerance", "inertia", "escape_direction", "versions"} <= names
    assert not {"n_pos", "n_neg", "n_zero"} & names  # one source of truth: the inertia
