"""DistributedObjective on gloo ranks (2 and 3 processes on localhost) = Objective on all data."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import distributed_worker as worker
from saddlescope import DistributedError, Objective, shard_slice
from saddlescope.errors import InvalidInputError

WORKER = Path(worker.__file__)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch(
    scenario: str, ranks: int, out: Path, timeout: float = 60, group_timeout: float = 60
) -> list[subprocess.CompletedProcess[str]]:
    """Start ``ranks`` worker processes (a torchrun-like environment) and wait for all."""
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(_free_port()),
        "WORLD_SIZE": str(ranks),
        "GROUP_TIMEOUT": str(group_timeout),
        "OMP_NUM_THREADS": "1",
    }
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), scenario, str(out)],
            env={**env, "RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(ranks)
    ]
    start, ended = time.perf_counter(), {}
    while len(ended) < ranks and time.perf_counter() - start < timeout:
        ended.update(
            {
                r: time.perf_counter() - start
                for r, p in enumerate(procs)
                if p.poll() is not None and r not in ended
            }
        )
        time.sleep(0.05)
    done = []
    for r, p in enumerate(procs):
        if p.poll() is None:
            p.kill()
        stdout, stderr = p.communicate()
        run = subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)
        run.seconds = ended.get(r, math.inf)  # type: ignore[attr-defined]
        done.append(run)
    return done


def _reference(activation: str) -> dict[str, Any]:
    model, x, y = worker.problem(activation)
    return worker.analyse(Objective(model, nn.MSELoss(), (x, y)), relu=activation == "relu")


def _close(a: Any, b: Any, path: str = "") -> None:
    """Equal to rounding: tensors and floats to 1e-9 relative, everything else exactly."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), path
        for i, (u, v) in enumerate(zip(a, b)):
            _close(u, v, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=lambda m: f"{path}: {m}")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-9), path
    else:
        assert a == b, path


def _eigenvectors_up_to_sign(result: dict[str, Any]) -> None:
    vecs = result["eigenvectors"]
    result["eigenvectors"] = vecs * torch.sign(vecs[vecs.abs().argmax(0), range(vecs.shape[1])])


@pytest.mark.parametrize("ranks", [2, 3])
def test_every_algorithm_gives_the_single_process_numbers(tmp_path: Path, ranks: int) -> None:
    runs = _launch("same", ranks, tmp_path)
    for r in runs:
        assert r.returncode == 0, r.stderr[-3000:]
    ref = _reference("tanh")
    ref["describe"].update(ranks=ranks, num_batches=ranks)
    _eigenvectors_up_to_sign(ref)
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(ranks)]
    for res in results:
        _eigenvectors_up_to_sign(res)
        _close(ref, res)
    for res in results[1:]:  # every rank holds the same bits
        assert torch.equal(res["search"][3], results[0]["search"][3])
    assert ref["search"][0] == "converged" and ref["classify"][0] == "saddle"


def test_kink_check_and_regions_see_every_rank_s_data(tmp_path: Path) -> None:
    runs = _launch("relu", 2, tmp_path)
    for r in runs:
        assert r.returncode == 0, r.stderr[-3000:]
    ref = _reference("relu")
    res = torch.load(tmp_path / "rank0.pt", weights_only=False)
    assert ref["kink"]["on_kink"] and res["kink"]["on_kink"]
    for key in ("units", "within", "margin", "pattern", "ops"):
        assert res["kink"][key] == ref["kink"][key] or key == "pattern", key
    assert res["search"][0] == ref["search"][0] == "on-kink"
    assert res["kink"]["units"] == ref["kink"]["units"]


@pytest.mark.bad_input
def test_a_rank_with_a_bad_shard_ends_every_rank_with_a_clear_error(tmp_path: Path) -> None:
    runs = _launch("bad-shard", 2, tmp_path)
    assert runs[1].returncode != 0 and "InvalidInputError" in runs[1].stderr
    assert runs[0].returncode != 0
    assert "DistributedError: rank 1 could not read its shard of the data" in runs[0].stderr


@pytest.mark.bad_input
def test_a_rank_that_does_not_arrive_ends_the_others_at_the_timeout(tmp_path: Path) -> None:
    runs = _launch("late", 2, tmp_path, timeout=40, group_timeout=5)
    assert runs[0].returncode != 0 and runs[0].seconds < 35  # rank 1 sleeps for 60 s
    assert "DistributedError" in runs[0].stderr and "timeout" in runs[0].stderr


def test_shard_slices_cover_the_data_once() -> None:
    for n, ranks in [(13, 2), (13, 3), (4, 4), (100, 7)]:
        parts = [shard_slice(n, r, ranks) for r in range(ranks)]
        assert [i for p in parts for i in range(n)[p]] == list(range(n))
        assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1


@pytest.mark.bad_input
def test_shard_slice_and_the_objective_refuse_what_they_cannot_do() -> None:
    with pytest.raises(InvalidInputError, match="at least one sample"):
        shard_slice(2, 0, 3)
    with pytest.raises(InvalidInputError, match="0 ≤ rank < ranks"):
        shard_slice(10, 3, 3)
    model, x, y = worker.problem()
    with pytest.raises(DistributedError, match="init_process_group"):
        worker.DistributedObjective(model, nn.MSELoss(), (x, y))


def test_the_example_prints_the_same_on_one_and_two_ranks() -> None:
    root = Path(__file__).resolve().parents[1]
    outputs = []
    for ranks in (1, 2):
        run = subprocess.run(
            [
                *(sys.executable, "-m", "torch.distributed.run", "--standalone"),
                *("--nproc-per-node", str(ranks), "examples/distributed_spectrum.py"),
            ],
            cwd=root,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        lines = run.stdout.strip().splitlines()[-4:]
        assert lines[0].startswith(f"{ranks} ranks, 600 samples")
        outputs.append(lines[1:])
    assert outputs[0] == outputs[1] and "converged" in outputs[0][1]
