"""Argument checks shared by every public function: one rule per kind of value.

Each returns the value (normalised) or raises :class:`~saddlescope.errors.InvalidInputError`
naming the argument, what it got and what it needs. ``bool`` is never an integer here
(``max_steps=True`` is a mistake, not 1).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from saddlescope.errors import InvalidInputError

__all__ = [
    "check_bool",
    "check_callable",
    "check_choice",
    "check_device",
    "check_dtype",
    "check_finite",
    "check_fraction",
    "check_int",
    "check_positive",
    "check_seed",
]


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
        value: what the caller passed: a real number (not a ``bool`` or text).
        allow_zero: accept 0 as well (default False: strictly positive).
    """
    if isinstance(value, bool | str | bytes):
        raise InvalidInputError(f"{name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < 0 or (x == 0 and not allow_zero):
        bound = "≥ 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be a finite number {bound}, got {value!r}")
    return x


def check_finite(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is a finite real number (not a bool or text).

    Args:
        name: the argument's name, quoted in the error message.
        value: what the caller passed.
    """
    if not isinstance(value, bool | str | bytes):
        try:
            x = float(value)
        except (TypeError, ValueError):
            x = math.nan
        if math.isfinite(x):
            return x
    raise InvalidInputError(f"{name} must be a finite number, got {value!r}")


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """Return ``value`` if it is an integer (not a bool) ≥ ``minimum`` (and ≤ ``maximum``).

    Args:
        name: the argument's name, quoted in the error message.
        value: what the caller passed; an ``int`` but not a ``bool``.
        minimum: the smallest accepted value (inclusive).
        maximum: the largest accepted value (inclusive); None for no bound.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise InvalidInputError(
            f"{name} = {value:,} is over {maximum:,}, the most this can hold or run in "
            "reasonable time; use a smaller value"
        )
    return int(value)


def check_seed(value: Any) -> int:
    """Return ``value`` if it is a usable random seed: an integer ≥ 0 (not a bool).

    Args:
        value: what the caller passed as ``seed``.
    """
    return check_int("seed", value, 0)


def check_bool(name: str, value: Any, *, allow_none: bool = False) -> bool | None:
    """Return ``value`` if it is True or False (or None with ``allow_none``).

    Args:
        name: the argument's name, quoted in the error message.
        value: what the caller passed.
        allow_none: accept None as well (an "automatic" choice).
    """
    if isinstance(value, bool) or (allow_none and value is None):
        return value
    allowed = "True, False or None" if allow_none else "True or False"
    raise InvalidInputError(f"{name} must be {allowed}, got {value!r}")


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


def check_callable(name: str, value: Any, how: str) -> Any:
    """``value`` if it is None or callable, else a clear error saying how it is called.

    Args:
        name: the parameter's name, for the message.
        value: the value given.
        how: how it is called, e.g. "loss_fn(outputs, targets)".
    """
    if value is not None and not callable(value):
        raise InvalidInputError(f"{name} must be callable as {how}, got {type(value).__name__}")
    return value


_DTYPE_NAMES = {
    "float16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float": torch.float32,
    "float64": torch.float64,
    "double": torch.float64,
}


def check_dtype(dtype: Any) -> torch.dtype | None:
    """A floating-point ``torch.dtype`` from a dtype or its name ("float64", "torch.float32").

    Args:
        dtype: None, a ``torch.dtype`` or a name.
    """
    if dtype is None:
        return None
    if isinstance(dtype, str):
        key = dtype.removeprefix("torch.")
        if key not in _DTYPE_NAMES:
            raise InvalidInputError(
                f"dtype {dtype!r} is not a floating-point dtype name; use torch.float64 or "
                "torch.float32 (or 'float64', 'float32')"
            )
        dtype = _DTYPE_NAMES[key]
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise InvalidInputError(f"dtype must be a floating-point dtype, got {dtype!r}")
    return dtype


def check_device(device: Any) -> torch.device | None:
    """A usable ``torch.device`` from a device or its name, or a clear error.

    Refuses names torch does not know, the "meta" device (no values to analyse) and CUDA or
    MPS where this torch build or machine has none.

    Args:
        device: None, a ``torch.device`` or a name such as "cpu" or "cuda:0".
    """
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InvalidInputError(
            f"device {device!r} is not a device torch knows ({err}); use 'cpu' or 'cuda'"
        ) from None
    if dev.type == "meta":
        raise InvalidInputError(
            "device 'meta' holds no values to analyse; materialise the model (e.g. "
            "model.to_empty(device='cpu') then load its weights) and use 'cpu' or 'cuda'"
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(
            f"device {device!r}: this torch build or machine has no CUDA; use device='cpu'"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InvalidInputError(
            f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidInputError(f"device {device!r}: MPS is not available here; use 'cpu'")
    return dev
