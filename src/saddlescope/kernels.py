"""Kernels fit for curvature work: attention in its math form, and a clear word for the rest.

Fused attention kernels (flash, memory-efficient, the CPU flash kernel) have a first derivative
but no second, so a Hessian-vector product through ``nn.MultiheadAttention``,
``nn.TransformerEncoder`` or a HuggingFace model with its default ``sdpa`` attention fails deep
inside torch. Every forward pass that curvature work builds on runs under
:func:`curvature_kernels`, which selects the math implementation of scaled dot-product attention
(the same function, composed of differentiable ops). An op that still has no second derivative
is reported by :func:`missing_derivative`, naming it and saying what to do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from torch.nn.attention import SDPBackend, sdpa_kernel

from saddlescope.errors import SaddlescopeError

__all__ = ["curvature_kernels", "missing_derivative"]

_NOT_IMPLEMENTED = re.compile(r"derivative for (?:aten::)?([\w.:]+) is not implemented")


@contextmanager
def curvature_kernels() -> Iterator[None]:
    """Run scaled dot-product attention in its math form (twice differentiable)."""
    with sdpa_kernel([SDPBackend.MATH]):
        yield


def missing_derivative(err: BaseException) -> SaddlescopeError | None:
    """A saddlescope error for torch's "derivative for OP is not implemented", else None.

    Args:
        err: the error raised while building a gradient graph or taking a product.
    """
    match = _NOT_IMPLEMENTED.search(str(err))
    if match is None:
        return None
    return SaddlescopeError(
        f"the model uses {match.group(1)}, which torch cannot differentiate twice, so its Hessian "
        "cannot be formed from products; replace that layer with a twice-differentiable one "
        "(e.g. math attention, or a non-fused implementation), or restrict θ with param_filter= "
        f"to parameters after it, nearer the output (torch said: {err})"
    )
