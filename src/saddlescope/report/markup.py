"""The report's HTML building blocks: a section, a key–value table, a note, a 0–1 meter.

Everything here takes *trusted* HTML fragments (made from a record only by
:mod:`saddlescope.report.values`, which escapes) and returns HTML. :func:`value_html` is the
one way an arbitrary value of a free-form section (model, data, objective) becomes HTML.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from saddlescope.report.values import flag, num, text

__all__ = ["kv_table", "meter", "note", "section_html", "value_html", "value_table"]


def section_html(ident: str, title: str, body: str) -> str:
    """A ``<section>`` with an ``<h2>`` heading.

    Args:
        ident: the section's id (trusted: chosen by the report, not the record).
        title: the heading (trusted HTML).
        body: the content (trusted HTML).
    """
    return f'<section id="{ident}">\n<h2>{title}</h2>\n{body}\n</section>'


def note(message: str, kind: str = "missing") -> str:
    """A short paragraph saying what is missing or wrong (``kind`` "missing" or "problem").

    Args:
        message: the text (trusted HTML: escape record text before).
        kind: the paragraph's class, "missing" (absent by choice) or "problem" (malformed).
    """
    return f'<p class="{kind}">{message}</p>'


def kv_table(rows: Iterable[tuple[str, str]], cls: str = "kv") -> str:
    """A two-column table of (label, value) rows.

    Args:
        rows: (label, value) pairs of trusted HTML.
        cls: the table's class.
    """
    body = "\n".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="{cls}">\n{body}\n</table>'


def value_html(value: Any) -> str:
    """Any JSON value from a record as safe HTML (nested values as escaped compact JSON).

    Args:
        value: a value from the record.
    """
    if value is None or isinstance(value, bool):
        return flag(value)
    if isinstance(value, int | float):
        return num(value, ",.0f" if isinstance(value, int) else ".6g")
    if isinstance(value, str):
        return text(value)
    try:
        dumped = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):  # e.g. a circular or deep structure
        dumped = repr(value)
    return f"<code>{text(dumped, 500)}</code>"


def value_table(section: Mapping[str, Any], order: tuple[str, ...] = ()) -> str:
    """A free-form section as a table: the keys in ``order`` first, then the rest sorted.

    Args:
        section: the record's section (its keys and values are untrusted).
        order: keys to show first, when present.
    """
    keys = [k for k in order if k in section]
    keys += sorted((k for k in section if k not in order), key=str)
    return kv_table((text(k), value_html(section[k])) for k in keys)


def meter(value: float, err: float | None = None) -> str:
    """A 0–1 bar with a mark at ``value`` and, if given, a band of ± ``err`` around it.

    Args:
        value: a finite fraction (clamped to [0, 1]).
        err: the half-width of the error band, or None.
    """

    def pct(x: float) -> str:
        return f"{100 * min(max(x, 0.0), 1.0):.2f}%"

    band = ""
    if err is not None and math.isfinite(err) and err > 0:
        lo, hi = min(max(value - err, 0.0), 1.0), min(max(value + err, 0.0), 1.0)
        band = f'<span class="band" style="left:{pct(lo)};width:{pct(hi - lo)}"></span>'
    return (
        f'<span class="meter" aria-hidden="true">{band}'
        f'<span class="mark" style="left:{pct(value)}"></span></span>'
    )
