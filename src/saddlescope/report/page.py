"""The report page: one self-contained HTML file from an analysis record.

The page holds everything it shows (inline CSS, inline SVG figures), loads nothing and runs
nothing: it has no ``<script>``, no URL, and a Content-Security-Policy that forbids every
request but ``data:`` images, so that even text slipped past the escaping could not fetch or run
anything. The record is untrusted (see :mod:`saddlescope.report.values`).

(The module is ``page``, not ``html``, so that ``import html`` means the standard library's.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from saddlescope.errors import InvalidInputError
from saddlescope.files import write_text
from saddlescope.report.sections import (
    computation_section,
    density_section,
    description_section,
    landscape_section,
)
from saddlescope.report.style import CSS
from saddlescope.report.values import check_record, number, section, text
from saddlescope.report.verdict import escape_section, extremes_section, verdict_section

__all__ = ["CSP", "read_record", "render_report", "write_report"]

#: The page's Content-Security-Policy: no request of any kind, except images from data: URIs.
CSP = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)


def render_report(record: Mapping[str, Any]) -> str:
    """The analysis as one self-contained HTML page (inline SVG figures, no script, no URL).

    Every section of the record may be missing or null: the page shows what is there and says
    briefly what is not. Strings from the record are escaped, numbers are checked (a value
    that is not a number shows as "invalid"), and a series that cannot be drawn is explained.

    Args:
        record: an analysis record, as ``saddlescope analyze --json`` writes it
            (:meth:`saddlescope.analysis.Analysis.to_dict`), parsed.

    Returns:
        The page, as a string.

    Raises:
        InvalidInputError: ``record`` is not a mapping with ``"format"`` equal to
            ``"saddlescope.analysis/1"``.
    """
    record = check_record(record)
    verdict, verdict_problem = section(record, "verdict")
    threshold = None if verdict is None else verdict.get("threshold")
    kind = None if verdict is None else verdict.get("kind")
    body = [
        _header(record, kind),
        verdict_section(verdict, verdict_problem),
        extremes_section(record.get("extremes"), threshold),
        escape_section(*section(record, "escape")),
        density_section(*section(record, "density"), threshold, record.get("extremes")),
        landscape_section(*section(record, "landscape")),
        computation_section(*section(record, "path"), record.get("stages")),
        description_section(record),
        "<footer>Written by saddlescope. A self-contained page: no scripts, no network "
        "requests; the figures are inline SVG.</footer>",
    ]
    title = f"saddlescope: {text(kind if kind is not None else 'analysis')}"
    model = record.get("model")
    if isinstance(model, Mapping) and model.get("factory") is not None:
        title += f" — {text(model.get('factory'), 120)}"
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def _header(record: Mapping[str, Any], kind: Any) -> str:
    model = record.get("model")
    factory = model.get("factory") if isinstance(model, Mapping) else None
    what = "" if factory is None else f" of <code>{text(factory, 200)}</code>"
    params = model.get("num_params") if isinstance(model, Mapping) else None
    size = "" if number(params) is None else f", {number(params):,.0f} parameters"
    created = text(record.get("created", "unknown time"), 60)
    version = text(record.get("saddlescope_version", "unknown"), 40)
    return (
        f"<header>\n<h1>Critical-point analysis{what}</h1>\n"
        f'<p class="meta">{created} · saddlescope {version}{size}</p>\n</header>'
    )


def write_report(record: Mapping[str, Any], path: str | Path) -> Path:
    """Write :func:`render_report`'s page to ``path`` (UTF-8), creating missing folders.

    Args:
        record: an analysis record (see :func:`render_report`).
        path: the HTML file to write.

    Returns:
        The path written.
    """
    page = render_report(record)  # before touching the file system: a bad record writes nothing
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, page)


def read_record(path: str | Path) -> Mapping[str, Any]:
    """An analysis record read from a JSON file (checked: see :func:`render_report`).

    Args:
        path: the JSON file ``saddlescope analyze --json`` wrote.

    Raises:
        InvalidInputError: the file is not UTF-8 JSON, or not an analysis record.
    """
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise InvalidInputError(
            f"{path} is not a readable JSON file ({type(err).__name__}: {str(err)[:200]}); "
            "give the file `saddlescope analyze --json PATH` wrote"
        ) from None
    return check_record(record)
