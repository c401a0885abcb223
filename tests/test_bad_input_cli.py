"""The catalogue of bad inputs through the command line: each case must end with one line that
names the problem, the documented exit status (2: the input is wrong, 1: a file cannot be read or
written) and no traceback (issue 13). The API's cases are in ``test_bad_input_catalogue.py``.
"""

from __future__ import annotations

import re
import sqlite3
import sys
from pathlib import Path

import pytest

from saddlescope.cli import main
from saddlescope.survey import (
    DataConfig,
    ModelConfig,
    SearchConfig,
    StudyConfig,
    TrainConfig,
    run_study,
)

pytestmark = pytest.mark.bad_input

VALID = "seeds = 1\n[data]\nn_samples = 16\n[model]\nhidden = [[2]]\n[train]\nsteps = [0]\n"

# (label, config text, pattern): `survey CONFIG` must refuse it before any work, exit 2.
CONFIGS = [
    ("empty", "", "is empty"),
    ("not-toml", "seeds = = 1\n", "not valid TOML"),
    ("unknown-key", VALID + "colour = 1\n", "colour"),
    ("unknown-section", VALID + "[optimiser]\nlr = 1\n", "optimiser"),
    ("unknown-field", VALID.replace("[train]\n", "[train]\nmomentum = 0.9\n"), "momentum"),
    ("seeds-zero", VALID.replace("seeds = 1", "seeds = 0"), "seeds"),
    ("seeds-negative", VALID.replace("seeds = 1", "seeds = -3"), "seeds"),
    ("seeds-text", VALID.replace("seeds = 1", 'seeds = "1"'), "seeds"),
    ("seeds-float", VALID.replace("seeds = 1", "seeds = 1.5"), "seeds"),
    ("seeds-huge", VALID.replace("seeds = 1", "seeds = 1000000000000"), "seeds"),
    ("name-escape", 'name = "../../x"\n' + VALID, "plain file name"),
    ("name-absolute", 'name = "/tmp/x"\n' + VALID, "plain file name"),
    ("name-nul", 'name = "a\\u0000b"\n' + VALID, "plain file name"),
    ("name-empty", 'name = ""\n' + VALID, "name"),
    ("name-number", "name = 3\n" + VALID, "name"),
    ("hidden-empty", VALID.replace("hidden = [[2]]", "hidden = []"), "hidden"),
    ("hidden-zero-width", VALID.replace("hidden = [[2]]", "hidden = [[0]]"), "hidden"),
    ("hidden-negative", VALID.replace("hidden = [[2]]", "hidden = [[-2]]"), "hidden"),
    ("hidden-huge", VALID.replace("hidden = [[2]]", "hidden = [[100000000]]"), "hidden|size"),
    ("activation", VALID.replace("[model]\n", '[model]\nactivation = "swish2"\n'), "activation"),
    ("steps-negative", VALID.replace("steps = [0]", "steps = [-5]"), "steps"),
    ("steps-empty", VALID.replace("steps = [0]", "steps = []"), "steps"),
    ("steps-huge", VALID.replace("steps = [0]", "steps = [10000000000000]"), "steps"),
    ("lr-nan", VALID.replace("[train]\n", "[train]\nlr = nan\n"), r"\blr\b"),
    ("lr-negative", VALID.replace("[train]\n", "[train]\nlr = -0.1\n"), r"\blr\b"),
    ("lr-inf", VALID.replace("[train]\n", "[train]\nlr = inf\n"), r"\blr\b"),
    ("optimizer", VALID.replace("[train]\n", '[train]\noptimizer = "lion"\n'), "optimizer"),
    ("batch-size", VALID.replace("[train]\n", "[train]\nbatch_size = -1\n"), "batch_size"),
    ("dataset", VALID.replace("[data]\n", '[data]\nname = "imagenet"\n'), "imagenet|data"),
    ("n-samples-zero", VALID.replace("n_samples = 16", "n_samples = 0"), "n_samples"),
    (
        "n-samples-huge",
        VALID.replace("n_samples = 16", "n_samples = 10000000000"),
        "n_samples|size",
    ),
    ("d-in-zero", VALID.replace("[data]\n", "[data]\nd_in = 0\n"), "d_in"),
    ("method", VALID + '[search]\nmethod = "bfgs"\n', "method"),
    ("grad-tol-zero", VALID + "[search]\ngrad_tol = 0.0\n", "grad_tol"),
    ("grad-tol-nan", VALID + "[search]\ngrad_tol = nan\n", "grad_tol"),
    ("max-steps-negative", VALID + "[search]\nmax_steps = -1\n", "max_steps"),
    ("rtol-negative", VALID + "[spectrum]\nrtol = -1e-6\n", "rtol"),
    ("rtol-nan", VALID + "[spectrum]\nrtol = nan\n", "rtol"),
    ("atol-inf", VALID + "[spectrum]\natol = inf\n", "atol"),
    ("loss-bound-inf", VALID + "[spectrum]\nloss_lower_bound = inf\n", "loss_lower_bound"),
    ("loss-bound-nan", VALID + "[spectrum]\nloss_lower_bound = nan\n", "loss_lower_bound"),
    ("loss-bound-text", VALID + '[spectrum]\nloss_lower_bound = "0"\n', "loss_lower_bound"),
    ("memory-zero", VALID + "[spectrum]\nmemory_budget = 0\n", "memory_budget"),
    ("section-not-table", VALID.replace("[data]\nn_samples = 16\n", "data = 3\n"), "data"),
]


def _cli(args: list[str], monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["saddlescope", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out + out.err


def _one_line_error(code: int, text: str, want_code: int, pattern: str) -> None:
    assert code == want_code, text
    assert "Traceback" not in text, text
    assert re.search(pattern, text), f"{pattern!r} not in {text!r}"


@pytest.mark.parametrize(
    ("text", "pattern"), [pytest.param(t, p, id=label) for label, t, p in CONFIGS]
)
def test_bad_survey_configs(text, pattern, tmp_path: Path, monkeypatch, capsys):
    config = tmp_path / "study.toml"
    config.write_text(text, encoding="utf-8")
    code, out = _cli(["survey", str(config), "--out", str(tmp_path / "out")], monkeypatch, capsys)
    _one_line_error(code, out, 2, pattern)
    assert not list((tmp_path / "out").glob("*.db")), "nothing may be computed or stored"


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database" * 100)


def _truncated(path: Path, good: Path) -> None:
    path.write_bytes(good.read_bytes()[:3000])


def _damaged_page(path: Path, good: Path) -> None:
    data = bytearray(good.read_bytes())
    data[8192 : 8192 + 2000] = b"\xa5" * 2000  # the third page: a table's b-tree page
    path.write_bytes(bytes(data))


def _foreign_table(path: Path, good: Path) -> None:
    path.write_bytes(good.read_bytes())
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE extra (x)")


def _trigger(path: Path, good: Path) -> None:
    path.write_bytes(good.read_bytes())
    with sqlite3.connect(path) as con:
        con.execute("CREATE TRIGGER t AFTER INSERT ON runs BEGIN SELECT 1; END")


def _empty_sqlite(path: Path) -> None:
    sqlite3.connect(path).close()
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE unrelated (x)")


@pytest.fixture(scope="module")
def good_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("good") / "good.db"
    study = StudyConfig(
        name="good",
        seeds=1,
        data=DataConfig(n_samples=16, d_in=2, teacher_hidden=2),
        model=ModelConfig(hidden=((2,),)),
        train=TrainConfig(steps=(0,)),
        search=SearchConfig(max_steps=20),
    )
    run_study(study, db)
    return db


DATABASES = {
    "garbage": (lambda p, g: _garbage(p), 2, "not an SQLite database"),
    "zero-bytes": (lambda p, g: p.write_bytes(b""), 2, "another layout"),
    "truncated": (_truncated, 2, "not an SQLite database"),
    "damaged-page": (_damaged_page, 1, "damaged"),
    "foreign-table": (_foreign_table, 2, "extra"),
    "trigger": (_trigger, 2, "trigger"),
    "unrelated": (lambda p, g: _empty_sqlite(p), 2, "something else"),
    "directory": (lambda p, g: p.mkdir(), 2, "is a directory"),
    "missing": (lambda p, g: None, 2, "does not exist"),
}

DB_COMMANDS = {
    "show": lambda db, out: ["survey", "show", db],
    "export": lambda db, out: ["survey", "export", db, "--csv", f"{out}/x.csv"],
    "plot": lambda db, out: ["survey", "plot", db, "--out", out],
    "landscape": lambda db, out: ["landscape", "--db", db, "--out", out],
    "escape": lambda db, out: ["escape", "--db", db, "--out", out, "--max-steps", "1"],
}


@pytest.mark.parametrize("command", list(DB_COMMANDS))
@pytest.mark.parametrize("kind", list(DATABASES))
def test_bad_databases(kind, command, good_db, tmp_path: Path, monkeypatch, capsys):
    make, want_code, pattern = DATABASES[kind]
    db = tmp_path / "bad.db"
    make(db, good_db)
    args = DB_COMMANDS[command](str(db), str(tmp_path / "out"))
    code, out = _cli(args, monkeypatch, capsys)
    _one_line_error(code, out, want_code, pattern)


# (label, args, exit status, pattern): options refused before any work.
OPTIONS = [
    ("analyze-no-model", ["analyze"], 2, "--model"),
    (
        "analyze-bad-spec",
        ["analyze", "--model", "no_colon", "--data", "m:f"],
        2,
        "module:|spec|model",
    ),
    (
        "analyze-missing-module",
        ["analyze", "--model", "no_such_mod_x:make", "--data", "m:f"],
        2,
        "no_such_mod_x",
    ),
    ("analyze-k-zero", ["analyze", "--model", "m:f", "--k", "0"], 2, "--k"),
    ("analyze-k-text", ["analyze", "--model", "m:f", "--k", "x"], 2, "--k"),
    ("analyze-dtype", ["analyze", "--model", "m:f", "--dtype", "float16"], 2, "--dtype"),
    ("analyze-norm-stats", ["analyze", "--model", "m:f", "--norm-stats", "x"], 2, "--norm-stats"),
    (
        "analyze-seconds",
        ["analyze", "--model", "m:f", "--max-dense-seconds", "-1"],
        2,
        "--max-dense-seconds",
    ),
    ("analyze-seed", ["analyze", "--model", "m:f", "--seed", "-1"], 2, "--seed"),
    (
        "analyze-checkpoint",
        ["analyze", "--model", "m:f", "--checkpoint", "/no/such.pt"],
        2,
        "--checkpoint|does not exist",
    ),
    ("escape-saddles", ["escape", "--saddles", "0"], 2, "--saddles"),
    ("escape-decrease", ["escape", "--decrease", "-1"], 2, "--decrease"),
    ("escape-max-steps", ["escape", "--max-steps", "0"], 2, "--max-steps"),
    ("escape-db-missing", ["escape", "--db", "/no/such.db"], 2, "does not exist"),
    ("landscape-span-zero", ["landscape", "--span", "0"], 2, "--span"),
    ("landscape-span-negative", ["landscape", "--span", "-1"], 2, "--span"),
    ("landscape-span-nan", ["landscape", "--span", "nan"], 2, "--span|span"),
    ("landscape-span-inf", ["landscape", "--span", "inf"], 2, "--span|span"),
    ("landscape-span-text", ["landscape", "--span", "wide"], 2, "--span"),
    ("landscape-seed", ["landscape", "--seed", "x"], 2, "--seed"),
    ("landscape-run-no-db", ["landscape", "--run", "abc"], 2, "--db"),
    ("landscape-span-no-db", ["landscape", "--span", "2"], 2, "--db"),
    ("escape-decrease-nan", ["escape", "--decrease", "nan"], 2, "--decrease"),
    ("escape-decrease-one", ["escape", "--decrease", "1"], 2, "--decrease"),
    ("analyze-no-data", ["analyze", "--model", "m:f"], 2, "--data"),
    ("lift-dataset", ["lift", "--dataset", "mnist"], 2, "--dataset"),
    ("lift-hidden", ["lift", "--hidden", "0"], 2, "--hidden"),
    ("lift-ratio-nan", ["lift", "--ratio", "nan"], 2, "ratio"),
    ("lift-ratio-inf", ["lift", "--ratio", "inf"], 2, "ratio"),
    ("lift-ratio-text", ["lift", "--ratio", "x"], 2, "--ratio"),
    ("lift-seed", ["lift", "--seed", "x"], 2, "--seed"),
    ("demo-grid", ["demo", "--grid", "0"], 2, "--grid"),
    ("demo-method", ["demo", "--method", "bfgs"], 2, "--method"),
    ("report-missing", ["report", "/no/such.json", "--html", "x.html"], 2, "does not exist"),
    ("report-no-html", ["report", "/dev/null"], 2, "--html"),
    ("survey-runs-zero", ["survey", "--runs", "0"], 2, "--runs"),
    ("survey-workers-zero", ["survey", "--workers", "0"], 2, "--workers"),
    ("survey-backend", ["survey", "--backend", "dask"], 2, "--backend"),
    ("survey-config-missing", ["survey", "/no/such.toml"], 2, "no config file|does not exist"),
    ("survey-config-dir", ["survey", "/"], 2, "is a directory|not a regular file"),
    ("export-nothing", ["survey", "export", "/dev/null"], 2, "--csv|--parquet|database"),
    ("unknown-command", ["frobnicate"], 2, "No such command"),
    ("unknown-option", ["survey", "--colour"], 2, "No such option"),
]


@pytest.mark.parametrize(
    ("args", "want", "pattern"), [pytest.param(a, c, p, id=label) for label, a, c, p in OPTIONS]
)
def test_bad_options(args, want, pattern, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out = _cli(args, monkeypatch, capsys)
    _one_line_error(code, out, want, pattern)


def _report_record(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "record.json"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        pytest.param("{not json", "JSON", id="not-json"),
        pytest.param("[1, 2]", "object|record", id="not-an-object"),
        pytest.param("{}", "record|missing|field", id="empty-object"),
        pytest.param('{"kind": "<script>"}', "record|missing|field", id="partial"),
    ],
)
def test_bad_report_records(text, pattern, tmp_path: Path, monkeypatch, capsys):
    record = _report_record(tmp_path, text)
    code, out = _cli(
        ["report", str(record), "--html", str(tmp_path / "r.html")], monkeypatch, capsys
    )
    _one_line_error(code, out, 2, pattern)
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    ("path", "value", "pattern"),
    [
        pytest.param("$.hidden", "[100000000]", "model.hidden", id="width"),
        pytest.param("$.data.n_samples", "10000000000", "n_samples", id="samples"),
        pytest.param("$.train.steps", "[10000000000000]", "train.steps", id="steps"),
        pytest.param("$.search.max_steps", "-1", "max_steps", id="max-steps"),
        pytest.param("$.spectrum.rtol", "-1", "rtol", id="rtol"),
        pytest.param("$.activation", '"os.system"', "activation", id="activation"),
    ],
)
def test_a_crafted_stored_spec_is_refused_before_anything_is_built(
    path, value, pattern, good_db, tmp_path: Path, monkeypatch, capsys
):
    db = tmp_path / "crafted.db"
    db.write_bytes(good_db.read_bytes())
    with sqlite3.connect(db) as con:
        run_id = con.execute("SELECT run_id FROM runs").fetchone()[0]
        con.execute(f"UPDATE runs SET spec = json_set(spec, '{path}', json(?))", (value,))
    args = ["landscape", "--db", str(db), "--run", run_id, "--out", str(tmp_path / "out")]
    code, out = _cli(args, monkeypatch, capsys)
    _one_line_error(code, out, 2, pattern)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("[1, 2]", id="a-list"),
        pytest.param("{not json", id="not-json"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="deep"),
    ],
)
def test_a_crafted_search_record_is_a_clear_error(
    value, good_db, tmp_path: Path, monkeypatch, capsys
):
    db = tmp_path / "crafted.db"
    db.write_bytes(good_db.read_bytes())
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET search = ?", (value,))
    code, out = _cli(["survey", "show", str(db)], monkeypatch, capsys)
    _one_line_error(code, out, 2, "search record")
