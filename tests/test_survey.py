"""The empirical study: configs, the store, resume, determinism across executors, crash safety."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from saddlescope import InvalidInputError, NonFiniteError
from saddlescope.cli import cli
from saddlescope.data import load_dataset
from saddlescope.survey import (
    DataConfig,
    ModelConfig,
    ResultStore,
    RunSpec,
    SearchConfig,
    StudyConfig,
    TrainConfig,
    default_config,
    execute,
    load_config,
    run_one,
    run_study,
    summarize,
)
from saddlescope.survey.runner import objective_for, trained_objective
from saddlescope.survey.summary import SummaryRow

TINY_TOML = """
name = "tiny"
seeds = {seeds}

[data]
name = "teacher-student"
n_samples = 32
d_in = 3
teacher_hidden = 2

[model]
hidden = [[2], [3]]

[train]
steps = [0, 40]

[search]
max_steps = 60
"""


def tiny(seeds: int = 1) -> StudyConfig:
    return StudyConfig(
        name="tiny",
        seeds=seeds,
        data=DataConfig(n_samples=32, d_in=3, teacher_hidden=2),
        model=ModelConfig(hidden=((2,), (3,))),
        train=TrainConfig(steps=(0, 40)),
        search=SearchConfig(max_steps=60),
    )


def results(records):
    return sorted((r.result_dict() for r in records), key=lambda d: d["run_id"])


# ------------------------------------------------------------------------------------ config
def test_toml_and_dataclass_configs_agree(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML.format(seeds=2))
    cfg = load_config(path)
    assert cfg == tiny(2)
    assert cfg.config_hash == tiny(5).config_hash  # the number of seeds is not part of the hash
    assert len(cfg.runs()) == 2 * 2 * 2
    ids = [r.run_id for r in cfg.runs()]
    assert len(set(ids)) == len(ids)
    assert [r.seed for r in cfg.runs()] == [0, 0, 0, 0, 1, 1, 1, 1]  # seed-major


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("seedz = 3", "unknown config key 'seedz'"),
        ("[train]\nlrr = 0.1", r"unknown config key 'train\.lrr'.*known keys in \[train\]"),
        ('[data]\nname = "mnist"', "data.name.*mnist"),
        ("[data]\nn_samples = 0", "data.n_samples"),
        ('[data]\nname = "digits"\nn_samples = 5000', "n_samples=5000 exceeds"),
        ("[model]\nhidden = [[3, 0]]", "model.hidden.*positive"),
        ("[model]\nhidden = [4]", "list of lists"),
        ('[model]\nactivation = "swish"', "model.activation"),
        ("[model]\nhidden = [[20000]]", r"model\.hidden.*bytes.*spectrum\.memory_budget"),
        ('[train]\noptimizer = "rmsprop"', "train.optimizer"),
        ("[train]\nsteps = [-1]", "train.steps"),
        ('[search]\nmethod = "bfgs"', "search.method"),
        ("[search]\ngrad_tol = -1.0", "search.grad_tol"),
        ("[spectrum]\nrtol = 2.0", "spectrum.rtol"),
        ("seeds = 0", "seeds"),
        ("train = 3", "'train' must be a table"),
    ],
)
def test_bad_configs_fail_naming_the_key(tmp_path, text, pattern):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=pattern):
        load_config(path)


def test_bad_config_fails_before_any_run(tmp_path):
    bad = dataclasses.replace(tiny(), search=SearchConfig(method="bfgs"))
    db = tmp_path / "x.db"
    with pytest.raises(InvalidInputError, match=r"search\.method"):
        run_study(bad, db)
    assert not db.exists()


def test_unreadable_config_files(tmp_path):
    with pytest.raises(InvalidInputError, match="no config file"):
        load_config(tmp_path / "missing.toml")
    (tmp_path / "broken.toml").write_text("[data\nname=")
    with pytest.raises(InvalidInputError, match="not valid TOML"):
        load_config(tmp_path / "broken.toml")


def test_default_study_is_valid_and_affordable():
    cfg = default_config()
    cfg.validate()
    assert max(cfg.num_params(h) for h in cfg.model.hidden) < 100


# ------------------------------------------------------------------------------------ data
@pytest.mark.parametrize("name", ["digits", "teacher-student", "sinc"])
def test_datasets_are_deterministic(name):
    a = load_dataset(name, n_samples=40, seed=3)
    b = load_dataset(name, n_samples=40, seed=3)
    c = load_dataset(name, n_samples=40, seed=4)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)
    assert a.inputs.dtype == torch.float64 and torch.isfinite(a.inputs).all()


def test_digits_are_balanced_standardised_one_hot():
    d = load_dataset("digits", n_samples=50, classes=5, pool=2)
    assert d.inputs.shape == (50, 16) and d.targets.shape == (50, 5)
    assert d.targets.sum(0).tolist() == [10.0] * 5
    assert torch.allclose(d.inputs.mean(0), torch.zeros(16, dtype=torch.float64), atol=1e-12)


# ------------------------------------------------------------------------------------ runs
def test_run_one_is_pure():
    spec = tiny().runs()[1]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    threads = torch.get_num_threads()
    a = run_one(spec)
    assert torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    b = run_one(spec)
    assert a.result_dict() == b.result_dict()
    assert a.num_params == 3 * 2 + 2 + 2 * 1 + 1
    inertia = a.inertia
    assert inertia.n_pos + inertia.n_neg + inertia.n_zero == a.num_params == a.eigenvalues.size
    assert a.minimum_ratio == inertia.n_pos / a.num_params
    assert a.index == inertia.n_neg / a.num_params
    assert a.train_steps == 40 and a.loss_trained <= 1.0
    assert a.converged and a.status == "converged"  # this run is known to converge
    assert a.grad_norm <= spec.search.grad_tol and a.kind == "saddle"
    assert "run" in str(a)


def test_store_round_trip_and_no_duplicates(tmp_path):
    record = run_one(tiny().runs()[0])
    with ResultStore(tmp_path / "s.db") as store:
        assert store.add(record) is True
        assert store.add(record) is False
        (back,) = store.records()
        assert len(store) == 1 and store.completed_ids() == {record.run_id}
        assert back.to_dict() == record.to_dict()
        assert np.array_equal(back.eigenvalues, record.eigenvalues)
        csv_path = store.export_csv(tmp_path / "s.csv")
        parquet_path = store.export_parquet(tmp_path / "s.parquet")
    header, row = csv_path.read_text().splitlines()[:2]
    assert header.startswith("run_id,") and record.run_id in row
    import pyarrow.parquet as pq

    table = pq.read_table(parquet_path).to_pylist()
    assert table[0]["run_id"] == record.run_id
    assert table[0]["eigenvalues"] == record.eigenvalues.tolist()


def test_resume_skips_stored_runs(tmp_path):
    db = tmp_path / "r.db"
    first = run_study(tiny(), db, max_runs=2)
    assert (first.planned, first.skipped, first.ran) == (2, 0, 2)
    second = run_study(tiny(), db)
    assert (second.planned, second.skipped, second.ran) == (4, 2, 2)
    third = run_study(tiny(), db)
    assert (third.skipped, third.ran) == (4, 0)
    with ResultStore(db) as store:
        assert len(store) == 4


def test_same_records_with_one_and_two_workers(tmp_path):
    specs = tiny(2).runs()
    one = list(execute(specs, workers=1))
    two = list(execute(specs, workers=2))
    assert results(one) == results(two)
    assert len(one) == len(specs)


def test_same_records_on_ray(tmp_path):
    pytest.importorskip("ray")
    specs = tiny().runs()
    local = list(execute(specs, workers=1))
    on_ray = list(execute(specs, workers=2, backend="ray"))
    assert results(local) == results(on_ray)


def test_a_gpu_request_names_no_run_and_a_cluster_without_cuda_runs_on_the_cpu(monkeypatch):
    ray = pytest.importorskip("ray")
    from saddlescope.survey.executors import ray_options

    cpu = tiny()
    gpu = dataclasses.replace(cpu, gpus_per_run=0.5)
    assert gpu.config_hash == cpu.config_hash
    assert [s.run_id for s in gpu.runs()] == [s.run_id for s in cpu.runs()]
    local = list(execute(cpu.runs(), workers=1))
    # a cluster that says it has a GPU, on a machine without CUDA: asked for, then the CPU
    ray.init(
        num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
        configure_logging=False, _node_ip_address="127.0.0.1",
    )  # fmt: skip
    try:
        assert ray_options(0.5) == {"num_cpus": 1, "num_gpus": 0.5, "max_retries": 1}
        on_ray = list(execute(gpu.runs(), workers=2, backend="ray", gpus_per_run=0.5))
        monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
        assert ray_options(0.5)["num_gpus"] == 0  # no GPU in the cluster: not asked for
    finally:
        ray.shutdown()
    assert results(local) == results(on_ray)
    assert {r.spec.device for r in on_ray} == {"cpu"}


@pytest.mark.bad_input
def test_bad_gpu_and_device_settings_are_refused():
    with pytest.raises(InvalidInputError, match="gpus_per_run"):
        StudyConfig.from_dict({"gpus_per_run": -1})
    with pytest.raises(InvalidInputError, match="gpus_per_run"):
        StudyConfig.from_dict({"gpus_per_run": "all"})
    raw = tiny().runs()[0].to_dict()
    with pytest.raises(InvalidInputError, match="'cpu' or 'cuda'"):
        RunSpec.from_dict({**raw, "device": "tpu"})


def test_executor_rejects_bad_options():
    with pytest.raises(InvalidInputError, match="unknown backend"):
        execute(tiny().runs(), backend="dask")
    with pytest.raises(InvalidInputError, match="workers"):
        execute(tiny().runs(), workers=0)
    with pytest.raises(InvalidInputError, match="address"):
        execute(tiny().runs(), address="auto")


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.format(seeds=4))  # 16 runs
    reference = tmp_path / "reference.db"
    run_study(load_config(config), reference, workers=1)

    killed = tmp_path / "killed.db"
    cmd = [
        sys.executable,
        "-m",
        "saddlescope.cli",
        "survey",
        str(config),
        "--db",
        str(killed),
        "--workers",
        "2",
        "--out",
        str(tmp_path / "out"),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if killed.exists():
            try:
                with sqlite3.connect(killed, timeout=5) as conn:
                    stored = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
            except sqlite3.OperationalError:
                stored = 0
            if stored >= 3:
                break
    assert proc.poll() is None, "the study finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-study
    proc.wait()
    with ResultStore(killed) as store:
        partial = len(store)
    assert 3 <= partial < 16
    resumed = run_study(load_config(config), killed, workers=2)
    assert resumed.skipped == partial and resumed.ran == 16 - partial
    with ResultStore(killed) as a, ResultStore(reference) as b:
        assert results(a.records()) == results(b.records())
        assert len(a) == 16


# ------------------------------------------------------------------------------------ summary, CLI
def test_summary_counts_add_up(tmp_path):
    db = tmp_path / "s.db"
    run_study(tiny(2), db)
    with ResultStore(db) as store:
        records = store.records()
    rows = summarize(records)
    total = rows[0]
    assert total.label == "all" and total.runs == 8
    assert total.converged + total.gradient_flat + total.not_critical == total.runs
    kinds = total.minima + total.saddles + total.maxima + total.degenerate
    assert kinds == total.converged
    assert sum(r.runs for r in rows[1:]) == total.runs


def test_cli_survey_show_export_plot(tmp_path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML.format(seeds=1))
    db, out = tmp_path / "c.db", tmp_path / "figs"
    runner = CliRunner()
    res = runner.invoke(
        cli,
        [
            "survey",
            str(config),
            "--runs",
            "3",
            "--workers",
            "1",
            "--db",
            str(db),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "3 runs planned" in res.output and "database:" in res.output
    for name in ("loss_vs_minimum_ratio.png", "index_histogram.png", "spectra.png"):
        assert (out / name).stat().st_size > 5_000
    res = runner.invoke(cli, ["survey", "show", str(db)])
    assert res.exit_code == 0 and "3 runs" in res.output and "converged" in res.output
    res = runner.invoke(
        cli,
        [
            "survey",
            "export",
            str(db),
            "--csv",
            str(tmp_path / "c.csv"),
            "--parquet",
            str(tmp_path / "c.parquet"),
        ],
    )
    assert res.exit_code == 0 and (tmp_path / "c.parquet").exists()
    res = runner.invoke(cli, ["survey", "plot", str(db), "--out", str(out), "--show-excluded"])
    assert res.exit_code == 0
    res = runner.invoke(cli, ["survey", str(tmp_path / "nope.toml")])
    assert res.exit_code != 0


def test_cli_bad_config_is_a_clean_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nlrr = 1")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "saddlescope.cli",
            "survey",
            str(bad),
            "--db",
            str(tmp_path / "b.db"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "unknown config key 'train.lrr'" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not Path(tmp_path / "b.db").exists()


def test_stored_runs_can_be_rebuilt_and_escaped(tmp_path):
    from saddlescope import classify
    from saddlescope.survey import stored_run

    db = tmp_path / "e.db"
    run_study(tiny(), db)
    with ResultStore(db) as store:
        record = store.records()[0]
        obj, theta = stored_run(store, record)
    assert obj.num_params == record.num_params and theta.numel() == record.num_params
    assert float(obj.loss(theta)) == pytest.approx(record.loss_critical, rel=1e-12)
    cp = classify(obj, theta, grad_tol=1e-8, loss_lower_bound=0.0)
    assert (cp.inertia.n_pos, cp.inertia.n_neg, cp.inertia.n_zero) == (
        record.inertia.n_pos,
        record.inertia.n_neg,
        record.inertia.n_zero,
    )
    res = CliRunner().invoke(
        cli,
        [
            "escape",
            "--db",
            str(db),
            "--saddles",
            "1",
            "--max-steps",
            "50",
            "--out",
            str(tmp_path / "esc"),
        ],
    )
    assert res.exit_code == 0, res.output


def test_foreign_and_outdated_databases_are_refused_untouched(tmp_path):
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
    with pytest.raises(InvalidInputError, match="something else"):
        ResultStore(foreign)
    with sqlite3.connect(foreign) as conn:  # nothing was added to it
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert tables == {"users"}
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute(f"PRAGMA application_id = {0x53414444}")
        conn.execute("CREATE TABLE runs (run_id TEXT)")
    with pytest.raises(InvalidInputError, match="another layout"):
        ResultStore(old)
    (tmp_path / "text.db").write_text("not a database at all " * 50)
    with pytest.raises(InvalidInputError, match="not an SQLite database"):
        ResultStore(tmp_path / "text.db")
    with pytest.raises(InvalidInputError, match="no results database"):
        ResultStore(tmp_path / "missing.db", readonly=True)


def test_summary_row_to_dict_and_str():
    row = SummaryRow("12 params [3]", 9, 6, 1, 1, 2, 3, 0, 1, 1, 0.875)
    d = json.loads(json.dumps(row.to_dict()))
    assert d["label"] == "12 params [3]" and d["runs"] == 9 and d["median_ratio"] == 0.875
    text = str(row)
    assert text.startswith("12 params [3]: 9 runs, 6 converged")
    assert "2 minima" in text and "3 saddles" in text and "1 degenerate" in text
    assert "1 gradient-flat" in text and "1 not critical" in text and "0.875" in text
    assert "1 on a kink" in text
    assert "—" in str(dataclasses.replace(row, median_ratio=None))


def test_the_local_ray_cluster_is_private(monkeypatch):
    ray = pytest.importorskip("ray")
    from saddlescope.survey.executors import execute

    seen = {}

    def fake_init(**kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.setattr(ray, "init", fake_init)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(RuntimeError, match="stop here"):
        list(execute([None], workers=1, backend="ray"))  # stopped before any run
    assert seen["_node_ip_address"] == "127.0.0.1"  # loopback only
    assert "RAY_AUTH_MODE" not in os.environ  # Ray's own authentication is not switched off


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("form", ["{}:{}", "ray://{}:{}"])
def test_a_ray_address_that_does_not_answer_fails_within_the_timeout(monkeypatch, form):
    ray = pytest.importorskip("ray")
    from saddlescope.survey import executors

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: pytest.fail("ray.init was reached"))
    address = form.format("127.0.0.1", _free_port())  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(InvalidInputError, match=r"no Ray cluster answered at .* within 10 s"):
        list(executors.execute(tiny().runs(), backend="ray", address=address))
    assert time.perf_counter() - start < executors.RAY_CONNECT_TIMEOUT + 5
    with pytest.raises(InvalidInputError, match=r"within 0\.3 s"):  # a host that never answers
        executors.check_reachable("192.0.2.1:6379", timeout=0.3)  # TEST-NET-1: unroutable
    with pytest.raises(InvalidInputError, match="not 'auto', 'host:port'"):
        executors.check_reachable("nowhere")


def test_a_run_that_raises_is_retried_once_then_stored_as_failed(tmp_path, monkeypatch):
    from saddlescope.survey import runner
    from saddlescope.survey.study import run_study

    cfg = tiny()
    specs = cfg.runs()
    bad = specs[1].run_id
    calls: list[str] = []
    real = runner.run_one

    def flaky(spec):
        calls.append(spec.run_id)
        if spec.run_id == bad:
            raise NonFiniteError("the loss diverged (lr = 1e6)")
        return real(spec)

    monkeypatch.setattr(runner, "run_one", flaky)
    db = tmp_path / "f.db"
    result = run_study(cfg, db)
    assert result.failed == 1 and result.ran == len(specs) - 1  # the study went on
    assert calls.count(bad) == 2  # the run and one retry
    with ResultStore(db, readonly=True) as store:
        (failure,) = store.failures()
    assert failure.run_id == bad and "NonFiniteError: the loss diverged" in failure.error
    calls.clear()
    again = run_study(cfg, db)  # a rerun does not repeat the stored failure
    assert again.ran == 0 and again.failed == 0 and calls == []
    monkeypatch.setattr(runner, "run_one", real)
    retried = run_study(cfg, db, retry_failed=True)
    assert retried.ran == 1 and retried.failed == 0
    with ResultStore(db, readonly=True) as store:
        assert store.failures() == [] and len(store) == len(specs)


def test_trained_objective_is_the_runs_start_and_repeatable():
    spec = tiny().runs()[1]  # 40 training steps
    a, b = trained_objective(spec), trained_objective(spec)
    assert torch.equal(a.theta0, b.theta0)
    assert not torch.equal(a.theta0, objective_for(spec).theta0)  # training moved it
    record = run_one(spec)
    assert float(a.loss(a.theta0)) == pytest.approx(record.loss_trained, rel=1e-12)
