"""Bad inputs get a saddlescope error that names the problem (issue 13; more in test_errors,
test_loss_checks, test_loading and test_cli_db)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

from saddlescope import InvalidInputError, classify, find_critical_point, toy
from saddlescope.survey.config import load_config

pytestmark = pytest.mark.bad_input

F64 = torch.float64
BODY = "seeds = 1\n[model]\nhidden = [[2]]\n"


@pytest.mark.parametrize("bound", [math.nan, math.inf, -math.inf, "x", True])
def test_loss_lower_bound_must_be_finite(bound):
    obj = toy.worked_example_objective()
    with pytest.raises(InvalidInputError, match="loss_lower_bound must be a finite number"):
        classify(obj, torch.zeros(2, dtype=F64), loss_lower_bound=bound)


@pytest.mark.parametrize("maxiter", [-1, 0, 2.5, True])
def test_minres_maxiter_must_be_a_positive_integer(maxiter):
    obj = toy.worked_example_objective()
    with pytest.raises(InvalidInputError, match="minres_maxiter"):
        find_critical_point(obj, torch.tensor([0.5, 0.1], dtype=F64), minres_maxiter=maxiter)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty", b""),
        ("binary", b"\x00\xff\xfe config"),
        ("latin1", 'name = "caf\xe9"\n'.encode("latin-1")),
        ("name-escape", b'name = "../../x"\n' + BODY.encode()),
        ("name-absolute", b'name = "/tmp/x"\n' + BODY.encode()),
        ("name-nul", b'name = "a\\u0000b"\n' + BODY.encode()),
        ("seeds-huge", b"seeds = 1000000000000\n[model]\nhidden = [[2]]\n"),
    ],
)
def test_bad_config_files(tmp_path: Path, name, content):
    path = tmp_path / f"{name}.toml"
    path.write_bytes(content)
    want = {
        "empty": "is empty",
        "binary": "not UTF-8|not valid TOML",
        "latin1": "not UTF-8",
        "seeds-huge": "seeds",
    }.get(name, "plain file name")
    with pytest.raises(InvalidInputError, match=want):
        load_config(path)


def test_config_paths_that_are_not_regular_files(tmp_path: Path):
    with pytest.raises(InvalidInputError, match="not a regular file"):
        load_config(tmp_path)
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInputError, match="not a regular file"):  # would block for ever
        load_config(fifo)
    with pytest.raises(InvalidInputError, match="no config file"):
        load_config(tmp_path / "missing.toml")
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (1024**2 + 1))
    with pytest.raises(InvalidInputError, match="not a config"):
        load_config(big)


def test_a_budget_larger_than_the_machine_is_a_clear_error(monkeypatch):
    from saddlescope import HessianTooLargeError
    from saddlescope import hessian as hessian_module

    obj = toy.worked_example_objective()
    real_empty = torch.empty

    def no_memory(*shape, **kw):
        if len(shape) == 2 and shape == (2, 2):
            raise RuntimeError("DefaultCPUAllocator: not enough memory")
        return real_empty(*shape, **kw)

    monkeypatch.setattr(hessian_module.torch, "empty", no_memory)
    with pytest.raises(HessianTooLargeError, match="cannot be allocated"):
        obj.hessian(torch.zeros(2, dtype=F64))


@pytest.mark.parametrize(
    "args",
    [
        ["survey", "--runs", "1", "--db", "/proc/no-such-dir/x.db"],
        ["survey", "--runs", "1", "--out", "/proc/no-such-dir"],
    ],
)
def test_unwritable_paths_are_one_line_errors(args, monkeypatch, capsys):
    import sys

    from saddlescope.cli import main

    monkeypatch.setattr(sys, "argv", ["saddlescope", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "error: No such file or directory (/proc/no-such-dir)" in out
    assert "Traceback" not in out
