"""The exceptions saddlescope raises for mistakes it can name.

Every error says what is wrong and what to do about it. They all derive from
:class:`SaddlescopeError`, so ``except SaddlescopeError`` catches any of them; the
input-validation ones also derive from :class:`ValueError` (scikit-learn's convention),
and the memory one from :class:`MemoryError`.
"""

from __future__ import annotations

__all__ = [
    "DistributedError",
    "HessianTooLargeError",
    "InvalidInputError",
    "NonFiniteError",
    "SaddlescopeError",
]


class SaddlescopeError(Exception):
    """Base class of every error saddlescope raises on purpose."""


class InvalidInputError(SaddlescopeError, ValueError):
    """An argument is malformed: wrong shape, bad tolerance, unknown option, empty data."""


class NonFiniteError(SaddlescopeError, ArithmeticError):
    """The loss or the gradient is NaN or infinite at the requested point."""


class HessianTooLargeError(SaddlescopeError, MemoryError):
    """A dense Hessian would exceed the memory budget; use the iterative (Lanczos) path."""


class DistributedError(SaddlescopeError, RuntimeError):
    """A collective across ranks failed: a rank failed, timed out, or the ranks disagree."""
