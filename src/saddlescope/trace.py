"""The trace of the Hessian from products only: Hutchinson and Hutch++.

**Trace** (:func:`hutchinson_trace`, :func:`hutch_pp_trace`). tr H = E[zᵀHz] for Rademacher z
(Hutchinson 1989); Hutch++ (Meyer, Musco, Musco & Woodruff 2021) takes the trace of H on the range
of H·S exactly and Hutchinson only on the rest, so its error falls like 1/budget, not 1/√budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from saddlescope.checks import check_int
from saddlescope.operators import as_operator
from saddlescope.slq import rademacher

__all__ = ["TraceEstimate", "hutch_pp_trace", "hutchinson_trace"]

DEFAULT_TRACE_PRODUCTS = 99


@dataclass(frozen=True)
class TraceEstimate:
    """tr H ≈ value; ``stderr`` is the standard error of its random part (0: exact).

    Attributes:
        value: the trace estimate.
        stderr: the standard error of its random part (0 when exact; nan with one sample).
        method: which estimator, ``"hutchinson"`` or ``"hutch++"``.
        hvps: operator products spent.
        num_params: n, the operator's size.
    """

    value: float
    stderr: float
    method: str
    hvps: int
    num_params: int

    def to_dict(self) -> dict[str, Any]:
        """Method, value, standard error, cost and size."""
        return {
            "method": self.method,
            "value": self.value,
            "stderr": self.stderr,
            "hvps": self.hvps,
            "num_params": self.num_params,
        }

    def __str__(self) -> str:
        return (
            f"TraceEstimate({self.method}, n={self.num_params}): tr H ≈ {self.value:.6g} "
            f"± {self.stderr:.3g} (s.e.); {self.hvps} HVPs"
        )


def hutchinson_trace(
    source: Any,
    theta: Tensor | None = None,
    *,
    products: int = DEFAULT_TRACE_PRODUCTS,
    seed: int = 0,
) -> TraceEstimate:
    """Tr H ≈ (1/k) Σ_i z_iᵀ H z_i over k = ``products`` Rademacher probes (Hutchinson 1989).

    ``stderr`` is the sample standard deviation over √k; the variance of one probe is
    2(‖H‖_F² − Σ_i H_ii²), so the error falls like 1/√k.

    Args:
        source: an Objective (with ``theta``), an operator, or a symmetric matrix.
        theta: the parameters, for an Objective only.
        products: k, the number of probes (and products), at least 2.
        seed: seeds the probes.

    >>> H = torch.diag(torch.arange(1.0, 11.0, dtype=torch.float64))
    >>> hutchinson_trace(H, products=4).value   # diagonal: exact
    55.0
    """
    op = as_operator(source, theta)
    check_int("products", products, 2)
    check_int("seed", seed, 0)
    before = op.num_products
    Z = rademacher(op, products, seed)
    samples = (Z * (op @ Z)).sum(dim=0).to("cpu", torch.float64)
    return TraceEstimate(
        value=float(samples.mean()),
        stderr=float(samples.std() / math.sqrt(products)),
        method="hutchinson",
        hvps=op.num_products - before,
        num_params=op.shape[0],
    )


def hutch_pp_trace(
    source: Any,
    theta: Tensor | None = None,
    *,
    products: int = DEFAULT_TRACE_PRODUCTS,
    seed: int = 0,
) -> TraceEstimate:
    """Hutch++: tr H = tr(QᵀHQ) + tr((I−QQᵀ)H(I−QQᵀ)), Q an orthonormal basis of H·S.

    Of the ``products`` budget, k = ⌊budget/3⌋ go to H·S (S: n×k Rademacher), k to H·Q, and the
    rest to Hutchinson on the deflated remainder — whose standard error is ``stderr`` (the first
    term is exact). Error O(‖H‖_* / budget) against Hutchinson's O(‖H‖_F / √budget) (Meyer,
    Musco, Musco & Woodruff 2021); exact when rank H ≤ k.

    Args:
        source: an Objective (with ``theta``), an operator, or a symmetric matrix.
        theta: the parameters, for an Objective only.
        products: the budget of products, at least 4 (default
            :data:`DEFAULT_TRACE_PRODUCTS`).
        seed: seeds the sketch S and the Hutchinson probes (a non-negative integer).

    >>> u = torch.arange(1.0, 21.0, dtype=torch.float64)
    >>> H = torch.outer(u, u)                        # rank 1: captured by the sketch
    >>> round(hutch_pp_trace(H, products=6).value, 6) == float(u @ u)
    True
    """
    op = as_operator(source, theta)
    check_int("products", products, 4)
    check_int("seed", seed, 0)
    before = op.num_products
    n = op.shape[0]
    k = min(products // 3, n)
    g = products - 2 * k
    S = rademacher(op, k + g, seed)
    Q, _ = torch.linalg.qr(op @ S[:, :k])
    exact = float((Q * (op @ Q)).sum())
    G = S[:, k:]
    G = G - Q @ (Q.mT @ G)
    samples = (G * (op @ G)).sum(dim=0).to("cpu", torch.float64)
    stderr = float(samples.std() / math.sqrt(g))
    return TraceEstimate(
        value=exact + float(samples.mean()),
        stderr=stderr,
        method="hutch++",
        hvps=op.num_products - before,
        num_params=n,
    )
