"""A full disk mid-study: a one-line error, exit 1, a consistent database that resumes (issue 13).

Two ways to fill the disk without touching the machine's: a file-size limit on the survey's
process (``RLIMIT_FSIZE``: every write past it fails, as on a full disk), and, where user
namespaces allow it, a real 160 KiB tmpfs (ENOSPC). Written files are whole or absent
(:mod:`saddlescope.files`).
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from saddlescope.files import atomic_path, write_text
from saddlescope.survey import ResultStore, run_study
from saddlescope.survey.config import load_config

STUDY = """
name = "full"
seeds = 2
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
SURVEY = [sys.executable, "-m", "saddlescope.cli", "survey", "--workers", "1"]
RUNS = 8


def _check_the_failure(out: str, code: int, db: Path, config: Path) -> None:
    assert code == 1, out
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "disk" in errors[0], out
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert 0 < kept < RUNS, f"{kept} runs stored: the disk did not fill mid-study"
    resumed = run_study(load_config(config), db)  # room again: the study completes
    assert resumed.skipped == kept and resumed.ran == RUNS - kept
    with ResultStore(db, readonly=True) as store:
        assert len(store) == RUNS and len(store.completed_ids()) == RUNS


def _limit_file_size(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


@pytest.mark.parametrize("limit", [160_000])
def test_a_file_size_limit_mid_study(tmp_path, limit):
    config = tmp_path / "full.toml"
    config.write_text(STUDY)
    db = tmp_path / "full.db"
    cmd = [*SURVEY, str(config), "--db", str(db), "--out", str(tmp_path / "out")]
    proc = subprocess.run(
        cmd, preexec_fn=_limit_file_size(limit), capture_output=True, text=True, timeout=600
    )
    _check_the_failure(proc.stdout + proc.stderr, proc.returncode, db, config)


def _user_namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _user_namespaces(), reason="needs unprivileged user namespaces")
def test_a_full_tmpfs_mid_study(tmp_path):
    config = tmp_path / "full.toml"
    config.write_text(STUDY)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = (
        f"mount -t tmpfs -o size=160k none {mnt} && "
        f"{' '.join(SURVEY)} {config} --db {mnt}/full.db --out {mnt}/out; "
        f"echo rc=$?; cp {mnt}/full.db* {tmp_path}/"  # with its -wal, if any
    )
    proc = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600
    )
    out = proc.stdout + proc.stderr
    code = int(out.rsplit("rc=", 1)[1].split()[0])
    _check_the_failure(out.replace(f"rc={code}", ""), code, tmp_path / "full.db", config)


# ------------------------------------------------------------------ files whole or absent
def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path):
    target = write_text(tmp_path / "fig.svg", "old")
    with pytest.raises(OSError, match="No space left"), atomic_path(target) as tmp:
        tmp.write_text("half a fig")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig.svg"]


def test_a_figure_that_fails_mid_write_leaves_nothing(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from saddlescope.plots.common import save

    fig = plt.figure()
    real = fig.savefig

    def full_disk(path, **kw):
        real(path, **kw)  # a whole file, then the disk fills (say, on flush)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fig, "savefig", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save(fig, tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []


def test_written_files_get_the_usual_permissions(tmp_path):
    path = write_text(tmp_path / "a.json", "{}")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
