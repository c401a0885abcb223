"""Section 3: peak memory for 1×, 4× and 16× the data, one fresh process per row."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmarks.real_models.cases import CifarLike, resnet20
from saddlescope import Objective

MEMORY_CONFIGS = ("ours streamed", "ours streamed, 256 MiB budget", "ours held", "PyHessian loader")
MULTIPLES = (1, 4, 16)


def rss_mib() -> float:
    """This process's peak resident memory (MiB): VmHWM where /proc has it, since ru_maxrss
    starts from the parent's peak after fork+exec on Linux; else ru_maxrss."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def memory_child(config: str, multiple: int, quick: bool, hvps: int = 2) -> dict[str, Any]:
    """In a fresh process: build, one gradient, ``hvps`` products; the peak RSS."""
    torch.set_num_threads(1)
    model = resnet20()
    loader = CifarLike(2 * multiple, 4 if quick else 16, seed=9)
    base = rss_mib()
    start = time.perf_counter()
    if config == "PyHessian loader":
        from pyhessian import hessian

        h = hessian(copy.deepcopy(model), nn.CrossEntropyLoss(), dataloader=loader, cuda=False)
        h.model.zero_grad()
        for x, y in loader:
            nn.functional.cross_entropy(h.model(x), y).backward()
        v = [torch.randn_like(p) for p in h.params]
        for _ in range(hvps):
            h.dataloader_hv_product(v)
    else:
        kw: dict[str, Any] = {"hold_data": config == "ours held"}
        if "256 MiB" in config:
            kw["memory_budget"] = 256 * 1024**2
        obj = Objective(model, nn.CrossEntropyLoss(), loader, **kw)
        theta = obj.theta0
        obj.grad(theta)
        op = obj.hessian_operator(theta)
        v = torch.randn(obj.num_params)
        for _ in range(hvps):
            op @ v
    images = len(loader) * loader.batch_size
    data_mib = images * 3 * 32 * 32 * 4 / 1024**2
    return {
        "base_mib": base,
        "peak_mib": rss_mib(),
        "seconds": time.perf_counter() - start,
        "images": images,
        "data_mib": data_mib,
    }


def section_memory(quick: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for config in MEMORY_CONFIGS:
        out[config] = {}
        for mult in MULTIPLES:
            cmd = [
                sys.executable,
                "-m",
                "benchmarks.real_models",
                "--memory-child",
                config,
                str(mult),
            ]
            cmd += ["--quick"] if quick else []
            proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not lines:
                out[config][mult] = {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
            else:
                out[config][mult] = json.loads(lines[-1])
            print(f"     {config:<32} {mult:>3}×  {fmt_mem(out[config][mult])}", flush=True)
    return out


def fmt_mem(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"failed: {r['error']}"
    return (
        f"{r['images']:5d} images ({r['data_mib']:6.1f} MiB of data): peak RSS "
        f"{r['peak_mib']:7.0f} MiB (after imports and model {r['base_mib']:.0f} MiB), "
        f"{r['seconds']:.1f} s"
    )


def print_memory_header() -> None:
    print(
        "  3. peak memory, ResNet-20, batches generated on the fly (fresh process per row; "
        "one gradient and 2 HVPs)"
    )
