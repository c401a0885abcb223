"""Kill soak: a study killed at random, over and over, must lose, duplicate and change nothing.

    python -m benchmarks.kill_soak [--kills 100] [--seed 0] [--seeds 100]

Runs a study (``--seeds`` × 4 runs of a tiny teacher-student family) uninterrupted into a
reference database, then runs it again through the CLI (``saddlescope survey --workers 2``) and
kills it ``--kills`` times at random moments (after 0–2 more runs are stored, plus 0–1.5 s:
some during start-up, some mid-write), each time one of:

* ``driver-kill`` — SIGKILL of the driver alone (its pool workers must die with it);
* ``group-kill`` — SIGKILL of the driver and its workers at once;
* ``driver-term`` — SIGTERM of the driver (a clean stop);
* ``worker-kill`` — SIGKILL of one pool worker (the driver replaces the pool and goes on),
  then SIGKILL of the driver a moment later;
* ``two-drivers`` — two drivers on the same file (claims share the work): one SIGKILLed, the
  other SIGTERMed a moment later.

After each kill: ``PRAGMA integrity_check`` and no process left behind. Then the study is run
to the end, and the records are compared with the reference run by run: **lost** (in the
reference, not stored), **duplicated** (stored twice, or stored but not in the reference) and
**different** (stored, but not equal to the reference); a study that completes before the
kills are done is compared and started again on a new file. The goal is 0 / 0 / 0. Not a
test: it takes most of an hour on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.compare import load
from saddlescope.survey import ResultStore, run_study
from saddlescope.survey.config import load_config

STUDY = """
name = "soak"
seeds = {seeds}
[data]
name = "teacher-student"
n_samples = 48
d_in = 3
teacher_hidden = 2
[model]
hidden = [[2], [3]]
[train]
steps = [0, 60]
[search]
max_steps = 80
"""
MODES = ("driver-kill", "group-kill", "driver-term", "worker-kill", "two-drivers")


def _start(config: Path, db: Path, out: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "saddlescope.cli", "survey", str(config), "--db", str(db)]
    cmd += ["--workers", "2", "--out", str(out)]
    out.mkdir(exist_ok=True)
    with open(out / "drivers.log", "ab") as log:
        return subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def _children(pid: int) -> list[int]:
    kids = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        match = re.search(r"^PPid:\s+(\d+)", text, re.M)
        if match and int(match.group(1)) == pid and "State:\tZ" not in text:
            kids.append(int(status.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def _kill(proc: subprocess.Popen[bytes], mode: str, rng: random.Random) -> list[int]:
    """Apply one kill; return the pids that must be gone afterwards."""
    kids = _children(proc.pid)
    if mode == "worker-kill" and kids:
        os.kill(rng.choice(kids), signal.SIGKILL)
        time.sleep(rng.uniform(0.5, 3.0))
        kids = _children(proc.pid) + kids
    if mode == "group-kill":
        os.killpg(proc.pid, signal.SIGKILL)
    elif mode == "driver-term":
        os.kill(proc.pid, signal.SIGTERM)
    else:
        os.kill(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return kids


def _orphans(pids: list[int], seconds: float = 60.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    return sum(_alive(p) for p in pids)


def _integrity(db: Path) -> str:
    if not db.exists():
        return "ok"
    with sqlite3.connect(db, timeout=60) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=60) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.Error:
        return 0


def _wait_for_runs(db: Path, more: int, procs: list[subprocess.Popen[bytes]]) -> None:
    """Until ``more`` runs more are stored (at most 60 s, or until every driver ended)."""
    goal, deadline = _stored(db) + more, time.monotonic() + 60
    while _stored(db) < goal and time.monotonic() < deadline:
        if all(p.poll() is not None for p in procs):
            return
        time.sleep(0.1)


def _round(config: Path, db: Path, out: Path, mode: str, rng: random.Random) -> tuple[int, str]:
    procs = [_start(config, db, out)]
    if mode == "two-drivers":
        procs.append(_start(config, db, out))
    _wait_for_runs(db, rng.randint(0, 2), procs)
    time.sleep(rng.uniform(0.0, 1.5))  # sometimes during start-up, sometimes mid-write
    victim = rng.choice(procs)
    if victim.poll() is not None:  # the study ended (or the driver failed: see drivers.log)
        for other in procs:
            if other.poll() is None:
                _kill(other, "driver-term", rng)
        return 0, "finished" if victim.returncode == 0 else f"driver exit {victim.returncode}"
    pids = _kill(victim, "driver-kill" if mode == "two-drivers" else mode, rng)
    for other in procs:
        if other is not victim and other.poll() is None:
            time.sleep(rng.uniform(0.5, 3.0))
            pids += _kill(other, "driver-term", rng)
    return _orphans(pids), _integrity(db)


def _compare(db: Path, reference: Path) -> dict[str, int]:
    """Lost, duplicated and different records of ``db`` against the reference run."""
    with ResultStore(db, readonly=True) as got, ResultStore(reference, readonly=True) as ref:
        want = {r.run_id: r.result_dict() for r in ref.records()}
        have = [r.result_dict() for r in got.records()]
    stored = {d["run_id"]: d for d in have}
    return {
        "runs": len(want),
        "lost": sum(1 for k in want if k not in stored),
        "duplicated": len(have) - len(stored) + sum(1 for k in stored if k not in want),
        "different": sum(1 for k, d in stored.items() if k in want and d != want[k]),
    }


def _finish(config: Path, db: Path, reference: Path, totals: dict[str, int]) -> None:
    """Run the study to its end, compare, add to ``totals``, and start a new file."""
    result = run_study(load_config(config), db)
    totals["left for the final runs"] += result.ran
    totals["left to another process"] += result.elsewhere
    with ResultStore(db, readonly=True) as store:
        totals["stored as failed"] += len(store.failures())
    for key, value in _compare(db, reference).items():
        totals[key] += value
    totals["studies"] += 1
    for path in db.parent.glob(db.name + "*"):
        path.unlink()


def soak(kills: int, seed: int, seeds: int, tmp: Path) -> dict[str, int]:
    """Kill, check, repeat; a study that completes is compared and started again on a new file."""
    config = tmp / "soak.toml"
    config.write_text(STUDY.format(seeds=seeds))
    reference, db, out = tmp / "reference.db", tmp / "soak.db", tmp / "out"
    run_study(load_config(config), reference)
    rng = random.Random(seed)
    keys = ("studies", "runs", "left for the final runs", "left to another process")
    keys += ("stored as failed", "driver errors", "lost", "duplicated", "different")
    totals = dict.fromkeys(keys, 0) | {f"kills {m}": 0 for m in MODES}
    totals |= {"orphan processes": 0, "integrity failures": 0}
    done = 0
    while done < kills:
        mode = rng.choice(MODES)
        left, integrity = _round(config, db, out, mode, rng)
        if integrity.startswith("driver exit"):
            totals["driver errors"] += 1
        if integrity == "finished" or integrity.startswith("driver exit"):
            _finish(config, db, reference, totals)
            continue
        totals[f"kills {mode}"] += 1
        done += 1
        totals["orphan processes"] += left
        totals["integrity failures"] += integrity != "ok"
        if done % 10 == 0:
            with ResultStore(db, readonly=True) as store:
                print(f"  {done} kills, {len(store)} runs stored", flush=True)
    _finish(config, db, reference, totals)
    log = out / "drivers.log"
    errors = {ln for ln in log.read_text(errors="replace").splitlines() if "error" in ln.lower()}
    for line in sorted(errors)[:10]:
        print(f"  driver said: {line}")
    return {"kills": done, **totals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=100, help="study seeds (4 runs each)")
    args = parser.parse_args()
    print(f"kill soak: {args.kills} kills, seed {args.seed}, {4 * args.seeds} runs, load {load()}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(args.kills, args.seed, args.seeds, Path(tmp))
    for key, value in result.items():
        print(f"  {key:>24}: {value}")
    print(f"done in {time.perf_counter() - start:.0f} s; load {load()}")
    failed = result["lost"] + result["duplicated"] + result["different"]
    sys.exit(1 if failed or result["orphan processes"] or result["integrity failures"] else 0)


if __name__ == "__main__":
    main()
