"""Two processes on one results database share a study's work (issue 13, item 4)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from saddlescope.survey import ResultStore, run_study
from saddlescope.survey.claims import Owner
from saddlescope.survey.config import load_config
from saddlescope.survey.runner import RunFailure, run_one

STUDY = """
name = "shared"
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


def load_config_text(text: str):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_text(text)
        return load_config(path)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _other(store: ResultStore, pid: int, start: int = 0) -> Owner:
    return Owner(socket.gethostname(), pid, start)


def test_a_claim_of_a_live_process_is_left_to_it_and_a_dead_ones_is_taken_over(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with ResultStore(tmp_path / "s.db") as store:
            me = store.owner
            store.owner = _other(store, sleeper.pid)
            assert store.claim("a") and store.claim("b")
            store.owner = me
            assert not store.claim("a"), "a live process's claim was taken"
            assert store.claimed_elsewhere() == 2
            store.owner = _other(store, _dead_pid())
            assert store.claim("c")
            store.owner = me
            assert store.claim("c"), "a dead process's claim was not taken over"
            assert store.claim("c"), "a process's own claim holds for it"
            assert store.claimed_elsewhere() == 2
    finally:
        sleeper.kill()
        sleeper.wait()
    with ResultStore(tmp_path / "s.db") as store:
        assert store.claim("a") and store.claim("b"), "the sleeper is gone: its claims end"


def test_a_recycled_pid_does_not_keep_a_claim(tmp_path):
    with ResultStore(tmp_path / "s.db") as store:
        me = store.owner
        store.owner = Owner(me.host, me.pid + 0, me.start + 12345)  # this pid, another start
        assert store.claim("a")
        store.owner = me
        assert store.claim("a")


def test_claims_of_another_machine_are_honoured_then_expire(tmp_path, monkeypatch):
    from saddlescope.survey import claims

    with ResultStore(tmp_path / "s.db") as store:
        me = store.owner
        store.owner = Owner("elsewhere.example", 4242, 1)
        assert store.claim("a")
        store.owner = me
        assert not store.claim("a")
        monkeypatch.setattr(claims, "FOREIGN_CLAIM_HOURS", 0.0)
        assert store.claim("a")


def test_stored_and_failed_runs_are_not_claimed(tmp_path):
    saddle_record = run_one(load_config_text(STUDY.format(seeds=1)).runs()[0])
    with ResultStore(tmp_path / "s.db") as store:
        assert store.claim(saddle_record.run_id)
        assert store.add(saddle_record)
        assert not store.claim(saddle_record.run_id)
        store.add_failure(RunFailure("f", "ValueError: no", 2))
        assert not store.claim("f")
        assert store.claim("f", skip_failed=False)
        assert store.claimed_elsewhere() == 0
    with ResultStore(tmp_path / "s.db", readonly=True) as store:
        assert len(store) == 1


def test_closing_the_store_releases_its_claims(tmp_path):
    db = tmp_path / "s.db"
    with ResultStore(db) as store:
        assert store.claim("a")
    with ResultStore(db) as store:
        rows = store._conn.execute("SELECT COUNT(*) FROM claims").fetchone()[0]
    assert rows == 0


def _survey(config: Path, db: Path, out: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "saddlescope.cli", "survey", str(config), "--db", str(db)]
    cmd += ["--out", str(out)]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def test_two_surveys_on_one_database_compute_each_run_once(tmp_path):
    config = tmp_path / "shared.toml"
    config.write_text(STUDY.format(seeds=4))  # 16 runs
    db = tmp_path / "shared.db"
    procs = [_survey(config, db, tmp_path / f"out{i}") for i in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n---\n".join(outs)
    ran = [int(m.group(1)) for o in outs for m in [re.search(r"(\d+) run now", o)] if m]
    assert len(ran) == 2, outs
    assert sum(ran) == 16, f"runs computed {ran}: some twice or lost"
    with ResultStore(db, readonly=True) as store:
        assert len(store) == 16
        assert len({r.run_id for r in store.records()}) == 16


def test_a_study_takes_over_the_runs_of_a_process_that_died(tmp_path):
    config = tmp_path / "shared.toml"
    config.write_text(STUDY.format(seeds=1))  # 4 runs
    db = tmp_path / "shared.db"
    dead = _dead_pid()
    with ResultStore(db) as store:
        store.owner = _other(store, dead)
        cfg = load_config(config)
        store.add_study(cfg.name, cfg.config_hash, cfg.to_dict())
        for spec in cfg.runs():
            assert store.claim(spec.run_id)
        store._conn.commit()
        store.owner = Owner("x", 1, 1)  # so that closing does not release the dead one's claims
    start = time.perf_counter()
    result = run_study(load_config(config), db)
    assert result.ran == 4 and result.elsewhere == 0, str(result)
    assert time.perf_counter() - start < 120


@pytest.mark.parametrize("workers", [1, 2])
def test_a_study_leaves_the_runs_of_a_live_process_to_it(tmp_path, workers):
    config = tmp_path / "shared.toml"
    config.write_text(STUDY.format(seeds=1))  # 4 runs
    db = tmp_path / "shared.db"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        cfg = load_config(config)
        held = cfg.runs()[:2]
        with ResultStore(db) as store:
            store.owner = _other(store, sleeper.pid)
            for spec in held:
                assert store.claim(spec.run_id)
            store.owner = Owner("x", 1, 1)
        result = run_study(cfg, db, workers=workers)
        assert (result.ran, result.elsewhere) == (2, 2), str(result)
        assert "2 running in another process" in str(result)
        with ResultStore(db, readonly=True) as store:
            assert store.completed_ids() == {s.run_id for s in cfg.runs()[2:]}
    finally:
        sleeper.kill()
        sleeper.wait()
