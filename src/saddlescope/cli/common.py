"""What the commands share: the console, the ``--out`` and ``--db`` options, safe printing."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

__all__ = [
    "FiniteFloat",
    "console",
    "db_option",
    "fmt",
    "out_option",
    "printable",
    "safe",
    "vec",
]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

#: Where the commands print (150 columns when not a terminal, so that logs keep whole tables).
console = Console(width=150) if not Console().is_terminal else Console()


def safe(value: object) -> str:
    """``value`` as text that rich prints literally: no ``[markup]``, no control characters.

    Text from files (databases, configs, checkpoints) is data: markup is escaped, and control
    characters other than newline and tab (an ANSI escape could clear the screen or retitle
    the terminal) are shown as a backslash, x and two hex digits.

    Args:
        value: anything; its ``str()`` is cleaned and escaped.
    """
    return escape(printable(str(value)))


def printable(text: str) -> str:
    """``text`` with every control character but newline and tab shown as its hex escape.

    Args:
        text: any text.
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class FiniteFloat(click.FloatRange):
    """A finite float in an optional range.

    click's ``FloatRange`` lets NaN through every bound (each comparison with NaN is false) and
    accepts ±inf.
    """

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The value as a float, refused when NaN or infinite (then the range is checked).

        Args:
            value: the text given on the command line (or a default).
            param: the option, for the error message.
            ctx: click's context, for the error message.
        """
        rv = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(rv, param, ctx)


def out_option(default: str, help: str = "Folder for figures and data.") -> Callable[..., Any]:
    """The ``--out DIR`` option (a folder, passed as ``out_dir``).

    Args:
        default: the folder when none is given.
        help: the option's help text.
    """
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(default),
        show_default=True,
        help=help,
    )


def db_option(help: str) -> Callable[..., Any]:
    """The ``--db PATH`` option: an existing survey results file, or None.

    Args:
        help: the option's help text.
    """
    return click.option(
        "--db",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help=help,
    )


def fmt(x: float | None, spec: str = ".4g") -> str:
    """A number formatted by ``spec``, or "—" for None.

    Args:
        x: the number.
        spec: a format spec.
    """
    return "—" if x is None else format(x, spec)


def vec(values: Iterable[Any], spec: str = ".4g") -> str:
    """A vector as "(a, b, …)".

    Args:
        values: the entries (numbers, or 0-d tensors).
        spec: a format spec for each entry.
    """
    return "(" + ", ".join(format(float(v), spec) for v in values) + ")"
