"""The survey's worker processes die with their driver, and interrupts stop cleanly (issue 13).

Each test starts ``saddlescope survey --workers 2`` in a subprocess, waits until its two pool
workers run, then kills or interrupts the driver and checks that no worker outlives it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")

CONFIG = """name = "workers"
seeds = 40
[data]
n_samples = 64
d_in = 4
teacher_hidden = 3
[model]
hidden = [[3]]
[train]
steps = [250]
[search]
max_steps = 300
"""


def _children(pid: int) -> list[int]:
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
        except OSError:
            continue
        if int(fields.get("PPid", "0").strip() or 0) == pid:
            out.append(int(status.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in state  # a zombie has exited


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    config = tmp_path / "workers.toml"
    config.write_text(CONFIG)
    cmd = [sys.executable, "-c", "from saddlescope.cli import main; main()", "survey"]
    cmd += [str(config), "--workers", "2", "--db", str(tmp_path / "w.db"), "--out", str(tmp_path)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # a background job (CI, nohup) inherits SIGINT ignored, and so would the survey
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        kids = [k for k in _children(proc.pid) if "spawn_main" in _cmdline(k)]
        if len(kids) >= 2 and (tmp_path / "w.db").exists():
            return proc, kids
        time.sleep(0.2)
    proc.kill()
    pytest.fail("the pool workers did not start within 60 s")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _gone(pids: list[int], seconds: float = 30.0) -> bool:
    # a worker still importing torch (slow on a loaded machine) exits once its import is done
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_workers_die_when_the_driver_is_killed(tmp_path):
    proc, workers = _start(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert _gone(workers), "pool workers outlived a SIGKILLed driver"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupts_stop_cleanly_and_say_how_to_resume(tmp_path, sig, code):
    proc, workers = _start(tmp_path)
    time.sleep(1.0)  # let a few runs finish and be stored
    os.kill(proc.pid, sig)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == code, out
    assert "run the same command again to resume" in out and "Traceback" not in out
    assert _gone(workers)


# ------------------------------------------------------------------ a worker that dies mid-run
class _Spec:
    """A stand-in run: the pool only needs its run_id (and to pickle it)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Spec) and other.run_id == self.run_id

    def __hash__(self) -> int:
        return hash(self.run_id)


def _dies_on(spec: _Spec) -> str:
    """Kill this worker for run "die", and for "once" the first time only (a marker file)."""
    marker = Path(os.environ["SADDLESCOPE_TEST_MARKER"])
    if spec.run_id == "die" or (spec.run_id == "once" and not marker.exists()):
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.05)
    return spec.run_id


def _pool_results(tmp_path: Path, monkeypatch, ids: list[str]) -> list:
    from saddlescope.survey import executors

    monkeypatch.setenv("SADDLESCOPE_TEST_MARKER", str(tmp_path / "marker"))
    specs = iter([_Spec(i) for i in ids])
    return list(executors._pool(specs, 2, run=_dies_on))  # type: ignore[arg-type]


def test_a_run_whose_worker_dies_twice_is_a_failure_and_the_others_go_on(tmp_path, monkeypatch):
    from saddlescope.survey.runner import RunFailure

    ids = [f"ok{i}" for i in range(6)] + ["die"] + [f"ok{i}" for i in range(6, 10)]
    out = _pool_results(tmp_path, monkeypatch, ids)
    done = sorted(r for r in out if isinstance(r, str))
    failures = [r for r in out if isinstance(r, RunFailure)]
    assert done == sorted(i for i in ids if i != "die"), "a run was lost or ran twice"
    assert [(f.run_id, f.attempts) for f in failures] == [("die", 2)]
    assert "worker process died" in failures[0].error


def test_a_run_whose_worker_dies_once_is_run_again(tmp_path, monkeypatch):
    ids = ["a", "b", "once", "c", "d", "e"]
    out = _pool_results(tmp_path, monkeypatch, ids)
    assert sorted(out) == sorted(ids)
