"""Argument checks shared by every public function: one rule per kind of value.

Each returns the value (normalised) or raises :class:`~saddlescope.errors.InvalidInputError`
naming the argument, what it got and what it needs. ``bool`` is never an integer here
(``max_steps=True`` is a mistake, not 1).
"""

from __future__ import annotations

import math
from typing import Any

from saddlescope.errors import InvalidInputError

__all__ = ["check_choice", "check_fraction", "check_int", "check_positive"]


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``; else raise :class:`InvalidInputError`.

    Args:
        name: the argument's name, quoted in the error message.
        value: what the caller passed (must be a ``str``).
        choices: the accepted spellings, listed in the error message.
    """
    if not isinstance(value, str) or value not in choices:
        raise InvalidInputError(
            f"unknown {name} {value!r}; choose one of: {', '.join(repr(c) for c in choices)}"
        )
    return value


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is finite and > 0 (≥ 0 with ``allow_zero``).

    Args:
        name: the argument's name, quoted in the error message.
        value: what the caller passed: anything ``float()`` accepts except a ``bool``.
        allow_zero: accept 0 as well (default False: strictly positive).
    """
    if isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be a finite number {bound}, got {value!r}")
    return x


def check_int(name: str, value: Any, minimum: int) -> int:
    """Return ``value`` if it is an integer (not a bool) ≥ ``minimum``.

    Args:
        name: the argument's name, quoted in the error message.
        value: what the caller passed; an ``int`` but not a ``bool``.
        minimum: the smallest accepted value (inclusive).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def check_fraction(name: str, value: Any, example: str) -> float:
    """Return ``value`` as a float if it lies strictly between 0 and 1.

    Args:
        name: the argument's name, quoted in the error message.
        value: what the caller passed: a number in the open interval (0, 1).
        example: a typical valid value, shown in the error message (e.g. ``"0.95"``).
    """
    x = check_positive(name, value)
    if not x < 1:
        raise InvalidInputError(f"{name} must be in (0, 1), e.g. {example}; got {value!r}")
    return x
