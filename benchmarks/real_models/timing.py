"""Timing and accuracy helpers shared by the sections."""

from __future__ import annotations

import ctypes
import math
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

ACCURACY = 1e-3
TOL_LADDER = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5]
EIGSH_LADDER = [1e-1, 1e-2, 1e-3, 1e-4, 1e-6]
WHICH = {"largest": "LA", "smallest": "SA"}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def steady_allocator() -> str:
    """Keep glibc's malloc from handing freed memory back to the system; what was set.

    By default glibc serves large blocks by mmap and trims freed heap, so every product
    page-faults its temporaries afresh, by an amount that depends on what else the process
    holds: the same product timed ±20 % depending on which objects were alive. Fixed
    thresholds (mmap only above 32 MiB, no trimming) remove that for every method alike.
    Not in the memory section, whose rows run in fresh processes.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return "default allocator (not glibc)"
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    ok = all(
        libc.mallopt(param, value)
        for param, value in (
            (m_mmap_threshold, 32 * 1024**2),
            (m_trim_threshold, 2**31 - 1),
            (m_top_pad, 64 * 1024**2),
        )
    )
    return "glibc malloc, fixed thresholds" if ok else "glibc malloc (mallopt refused)"


def rel_err(value: float, ref: float) -> float:
    return abs(value - ref) / abs(ref) if math.isfinite(value) else math.inf


def first_reaching(values: list[float], ref: float, accuracy: float = ACCURACY) -> int | None:
    """The smallest m (1-based) whose m-th estimate is within ``accuracy`` of ``ref``."""
    for m, value in enumerate(values, start=1):
        if rel_err(value, ref) <= accuracy:
            return m
    return None


def ritz_extremes(alphas: Tensor, betas: Tensor, which: str) -> list[float]:
    """The extreme Ritz value of every leading m×m block of the Lanczos tridiagonal matrix."""
    T = torch.diag(alphas.double())
    if betas.numel():
        off = betas.double()[: alphas.numel() - 1]
        T += torch.diag(off, 1) + torch.diag(off, -1)
    pick = max if which == "largest" else min
    return [pick(torch.linalg.eigvalsh(T[:m, :m]).tolist()) for m in range(1, alphas.numel() + 1)]
