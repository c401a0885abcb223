"""Reading an untrusted analysis record: escaped text, checked numbers, checked series.

A record may come from a file someone else wrote, so nothing in it is trusted: every string
goes through :func:`text` (HTML-escaped, shortened), every number through :func:`number` (a real
``int``/``float``, never a ``bool`` or a string), and every list that becomes a figure through
:func:`series` (numbers only, finite, of a sensible length). What does not pass is shown as
"invalid" or explained in the page, instead of failing deep inside matplotlib.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from saddlescope.analysis import FORMAT
from saddlescope.errors import InvalidInputError

__all__ = [
    "MAX_ABS",
    "MAX_POINTS",
    "check_record",
    "flag",
    "num",
    "number",
    "section",
    "series",
    "text",
]

#: The most points a figure's series may have (a record is data, not a denial of service).
MAX_POINTS = 100_000
#: The largest magnitude a drawn value may have (beyond it, axis arithmetic overflows).
MAX_ABS = 1e100
_TEXT_LIMIT = 2_000  # characters of one string shown in the page


def check_record(record: Any) -> Mapping[str, Any]:
    """Return ``record`` if it is an analysis record (format :data:`FORMAT`), else raise.

    Only the envelope is checked here: each section is checked where it is rendered, and a
    missing or malformed section is explained in the page, not raised.

    Args:
        record: what ``saddlescope analyze --json`` wrote, parsed (a mapping).

    Raises:
        InvalidInputError: ``record`` is not a mapping, or its ``"format"`` is missing or is
            not :data:`FORMAT`.
    """
    if not isinstance(record, Mapping):
        raise InvalidInputError(
            f"an analysis record must be a JSON object (a mapping), got {type(record).__name__}; "
            "write one with `saddlescope analyze --json PATH`"
        )
    found = record.get("format")
    if found != FORMAT:
        shown = "missing" if found is None else repr(found)[:80]
        raise InvalidInputError(
            f"not a saddlescope analysis record: its format is {shown}, expected {FORMAT!r}; "
            "write one with `saddlescope analyze --json PATH`"
        )
    return record


def text(value: Any, limit: int = _TEXT_LIMIT) -> str:
    """``str(value)`` HTML-escaped (quotes too), cut to ``limit`` characters with "…".

    Args:
        value: anything; its ``str()`` is shown.
        limit: the most characters kept before escaping.
    """
    s = str(value)
    if len(s) > limit:
        s = s[:limit] + "…"
    return html.escape(s, quote=True)


def number(value: Any) -> float | None:
    """``value`` as a float if it is an ``int`` or ``float`` (not a ``bool``), else None.

    Non-finite floats are returned as they are (the caller decides how to show them).

    Args:
        value: a value from the record.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return None


def num(value: Any, spec: str = ".4g") -> str:
    """A record's number as safe HTML: formatted by ``spec``, "—" for None, else flagged.

    Args:
        value: a value from the record.
        spec: a format spec for a finite number.
    """
    if value is None:
        return '<span class="na">—</span>'
    x = number(value)
    if x is None:
        return f'<span class="invalid" title="not a number">invalid ({text(value, 40)})</span>'
    if not math.isfinite(x):
        return f'<span class="invalid" title="not finite">{x}</span>'
    return format(x, spec)


def flag(value: Any, yes: str = "yes", no: str = "no") -> str:
    """A record's boolean as safe HTML: ``yes``/``no``, "—" for None, else flagged.

    Args:
        value: a value from the record.
        yes: shown for True (trusted HTML from the caller).
        no: shown for False (trusted HTML from the caller).
    """
    if value is None:
        return '<span class="na">—</span>'
    if isinstance(value, bool):
        return yes if value else no
    return f'<span class="invalid" title="not true/false">invalid ({text(value, 40)})</span>'


def section(record: Mapping[str, Any], key: str) -> tuple[Mapping[str, Any] | None, str | None]:
    """The record's ``key`` section as (mapping, None), or (None, why it cannot be shown).

    Args:
        record: the checked record.
        key: the section's name.
    """
    value = record.get(key)
    if value is None:
        return None, "not in this record"
    if not isinstance(value, Mapping):
        return None, f"malformed (a {text(type(value).__name__)}, not an object)"
    return value, None


def series(name: str, value: Any, *, min_len: int = 2) -> tuple[list[float] | None, str | None]:
    """A list of drawable numbers as (floats, None), or (None, why it cannot be drawn).

    Drawable: ``int``/``float`` (not ``bool``), finite, within ±:data:`MAX_ABS`, and between
    ``min_len`` and :data:`MAX_POINTS` of them.

    Args:
        name: the series' name, quoted in the explanation.
        value: a value from the record (should be a list of numbers).
        min_len: the fewest points that make a figure.
    """
    if not isinstance(value, list | tuple):
        return None, f"{name} is missing or not a list"
    if not min_len <= len(value) <= MAX_POINTS:
        return None, f"{name} has {len(value)} points (need {min_len} to {MAX_POINTS:,})"
    out = [number(v) for v in value]
    bad = sum(x is None for x in out)
    if bad:
        return None, f"{name} has {bad} entries that are not numbers"
    floats = [x for x in out if x is not None]
    nonfinite = sum(not math.isfinite(x) for x in floats)
    if nonfinite:
        return None, f"{name} has {nonfinite} non-finite values (NaN or ±inf)"
    huge = sum(abs(x) > MAX_ABS for x in floats)
    if huge:
        return None, f"{name} has {huge} values beyond ±{MAX_ABS:g}"
    return floats, None
