"""The exceptions saddlescope raises for mistakes it can name.

Every error says what is wrong and what to do about it. They all derive from
:class:`SaddlescopeError`, so ``except SaddlescopeError`` catches any of them; the
input-validation ones also derive from :class:`ValueError` (scikit-learn's convention),
and the memory one from :class:`MemoryError`.
"""

from __future__ import annotations

__all__ = [
    "HessianTooLargeError",
    "InvalidInputError",
    "NonFiniteError",
    "SaddlescopeError",
]


class SaddlescopeError(Exception):
    """Base class of every error saddlescope raises on purpose."""


class InvalidInputError(SaddlescopeError, ValueError):
    """An argument is malformed: wrong shape, bad tolerance, unknown option, empty data…"""


class NonFiniteError(SaddlescopeError, ArithmeticError):
    """The loss or the gradient is NaN or infinite at the requested point."""


class HessianTooLargeError(SaddlescopeError, MemoryError):
    """A dense Hessian would exceed the memory budget; use the iterative (Lanczos) path."""


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``; else raise :class:`InvalidInputError`."""
    if value not in choices:
        raise InvalidInputError(
            f"unknown {name} {value!r}; choose one of: {', '.join(repr(c) for c in choices)}"
        )
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Return ``value`` if it is a finite number > 0 (≥ 0 with allow_zero), else raise."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if x != x or x in (float("inf"), float("-inf")) or x < 0 or (x == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be a finite number {bound}, got {value!r}")
    return x
