"""Choosing the spectrum's path by its cost: dense or Lanczos, said out loud.

A dense Hessian costs n products and an n×n ``eigh``; Lanczos costs a bounded number of
products whatever n is (its basis, at most min(n, max(20·k, 100)) steps, and the SLQ inertia
estimate's steps when that is asked for). Memory alone says nothing of time: a 4.9k-parameter
GRU fits a dense Hessian easily, but at tens of milliseconds a product the dense path takes
minutes where Lanczos takes seconds. So the choice measures one product at θ (the second one:
the first also builds the gradient graphs) and compares estimated *seconds*: dense when it fits
the memory budget and is estimated no slower than Lanczos or within ``max_dense_seconds``,
because a dense spectrum gives the exact inertia. Very small problems go dense unmeasured.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch

from saddlescope.operators import Operator

__all__ = ["DEFAULT_MAX_DENSE_SECONDS", "PathChoice", "choose_path", "eigh_seconds"]

DEFAULT_MAX_DENSE_SECONDS = 10.0
_UNMEASURED_N = 128  # up to this size dense is a few hundred products at most: no measurement


@dataclass(frozen=True)
class PathChoice:
    """Which path a spectrum takes, and why.

    Attributes:
        method: "dense" or "lanczos".
        reason: one sentence: the estimates that decided it.
        product_seconds: the measured seconds of one Hessian-vector product (None: unmeasured).
        dense_seconds: the dense path's estimate (n products + ``eigh``), or None.
        lanczos_seconds: the Lanczos path's estimate (its most products), or None.
        lanczos_products: the most products the Lanczos path may take (with the estimate).
    """

    method: str
    reason: str
    product_seconds: float | None = None
    dense_seconds: float | None = None
    lanczos_seconds: float | None = None
    lanczos_products: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields by name."""
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.method}: {self.reason}"


def choose_path(
    op: Operator,
    lanczos_products: int,
    *,
    max_dense_seconds: float = DEFAULT_MAX_DENSE_SECONDS,
    fits: bool = True,
    seed: int = 0,
) -> PathChoice:
    """Dense or Lanczos for the whole-spectrum question at one θ, by estimated time.

    Spends two products of ``op`` (counted in its ``num_products``) unless n ≤ 128 and the
    dense Hessian fits.

    Args:
        op: the Hessian operator at θ.
        lanczos_products: the most products the Lanczos path would take (its basis, plus the
            inertia estimate's steps when that is asked for).
        max_dense_seconds: dense is taken whenever its estimate is within this many seconds
            (exact inertia is worth a short wait), else only when no slower than Lanczos.
        fits: whether the dense Hessian fits the memory budget (False: Lanczos).
        seed: seeds the random vector the product is timed on.
    """
    n = op.shape[0]
    if n <= _UNMEASURED_N and fits:
        return PathChoice("dense", f"n = {n} is small: the exact spectrum costs {n} products")
    t = product_seconds(op, seed)
    if not fits:
        why = f"a dense {n:,}×{n:,} Hessian exceeds the memory budget"
        why += f"; Lanczos ≤ {_s(lanczos_products * t)} ({lanczos_products:,} products)"
        return PathChoice("lanczos", why, t, None, lanczos_products * t, lanczos_products)
    dense = n * t + eigh_seconds(n, op.dtype)
    iterative = lanczos_products * t
    method = "dense" if dense <= max(max_dense_seconds, iterative) else "lanczos"
    why = (
        f"dense ≈ {_s(dense)} ({n:,} products at {_s(t)} + eigh), Lanczos ≤ {_s(iterative)} "
        f"({lanczos_products:,} products)"
    )
    if method == "lanczos":
        why += f"; dense would take over {_s(max_dense_seconds)} and longer than Lanczos"
    elif dense <= max_dense_seconds:
        why += f"; dense (exact) is within {_s(max_dense_seconds)}"
    else:
        why += "; dense (exact) is no slower"
    return PathChoice(method, why, t, dense, iterative, lanczos_products)


def product_seconds(op: Operator, seed: int = 0) -> float:
    """Seconds of one product at steady state: the second of two (the first builds graphs).

    Args:
        op: the operator.
        seed: seeds the random vector.
    """
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(op.shape[0], generator=gen, dtype=torch.float64).to(op.dtype).to(op.device)
    op @ v
    start = time.perf_counter()
    op @ v
    _synchronize(op.device)
    return time.perf_counter() - start


def eigh_seconds(n: int, dtype: torch.dtype) -> float:
    """Estimated seconds of an n×n symmetric ``eigh``: a 256×256 one timed here, ×(n/256)³.

    Args:
        n: the size.
        dtype: the dtype.
    """
    return _eigh_256_seconds(dtype) * (n / 256) ** 3


def _eigh_256_seconds(dtype: torch.dtype) -> float:
    a = torch.randn(256, 256, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a = (a + a.T).to(dtype)
    torch.linalg.eigh(a)
    start = time.perf_counter()
    torch.linalg.eigh(a)
    return time.perf_counter() - start


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _s(seconds: float) -> str:
    if seconds < 1:
        return f"{1e3 * seconds:.3g} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    return f"{seconds / 60:.3g} min"
