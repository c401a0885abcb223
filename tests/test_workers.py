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


def _gone(pids: list[int], seconds: float = 10.0) -> bool:
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
