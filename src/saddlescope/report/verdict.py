"""The top of the report: the verdict, the extreme eigenvalues and the way down.

Each function takes one section of the record (or None with the reason it is absent) and
returns a whole ``<section>``. Values are untrusted: they reach the page only through
:mod:`saddlescope.report.values` (escaped text, checked numbers).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from saddlescope.report.markup import kv_table, meter, note, section_html
from saddlescope.report.values import flag, num, number, text

__all__ = ["KINDS", "escape_section", "extremes_section", "verdict_section"]

#: The kinds of point a verdict names (each has a colour in the page's style).
KINDS = ("minimum", "maximum", "saddle", "degenerate", "on-kink", "not-critical")
_MAX_ROWS = 200  # eigenvalues listed (the record holds a few per end)


def verdict_section(verdict: Mapping[str, Any] | None, problem: str | None) -> str:
    """The verdict: kind (strict or not), how it was reached, loss, ‖g‖, index, ratio, tolerance.

    Args:
        verdict: the record's ``"verdict"`` section, or None.
        problem: why ``verdict`` is None (shown instead).
    """
    if verdict is None:
        return section_html("verdict", "Verdict", note(f"No verdict: {problem}.", "problem"))
    kind = verdict.get("kind")
    cls = kind if kind in KINDS else "other"
    strict = (
        "" if verdict.get("strict") is None else flag(verdict["strict"], "strict", "not strict")
    )
    head = (
        f'<div class="kind kind-{cls}"><span class="label">{text(kind)}</span>'
        f' <span class="strict">{strict}</span></div>\n'
        f'<p class="resolution">{text(verdict.get("resolution", "—"))}</p>'
    )
    return section_html("verdict", "Verdict", head + "\n" + kv_table(_verdict_rows(verdict)))


def _verdict_rows(v: Mapping[str, Any]) -> list[tuple[str, str]]:
    tol = v.get("tolerance")
    tol = tol if isinstance(tol, Mapping) else {}
    estimate = v.get("is_estimate") is True
    conf = number(v.get("confidence"))
    how = "exact (complete spectrum)"
    if estimate:
        level = f", {conf:.0%} confidence" if conf is not None and 0 < conf <= 1 else ""
        how = f"SLQ estimate{level}"
    return [
        ("loss L(θ)", num(v.get("loss"), ".6g")),
        ("gradient norm ‖g‖", _grad(v.get("grad_norm"), tol.get("grad_tol"))),
        ("index n₋/n", _fraction(v.get("index"), v.get("index_err"), how)),
        ("minimum ratio n₊/n", _fraction(v.get("minimum_ratio"), v.get("minimum_ratio_err"), how)),
        ("inertia (n₋, n₀, n₊)", _inertia(v.get("inertia"), estimate)),
        ("zero band", f"|λ| ≤ {num(v.get('threshold'), '.3g')} counts as zero"),
        (
            "tolerance",
            f"grad_tol {num(tol.get('grad_tol'), 'g')}, rtol {num(tol.get('rtol'), 'g')}, "
            f"atol {num(tol.get('atol'), 'g')} (zero band = max(atol, rtol·max|λ|))",
        ),
    ]


def _grad(grad_norm: Any, grad_tol: Any) -> str:
    g, tol = number(grad_norm), number(grad_tol)
    shown = f"{num(grad_norm, '.3g')} vs grad_tol {num(grad_tol, '.3g')}"
    if g is None or tol is None or not (math.isfinite(g) and math.isfinite(tol)):
        return shown
    if g <= tol:
        return f'{num(g, ".3g")} ≤ grad_tol {num(tol, ".3g")} <span class="ok">critical</span>'
    return f'{num(g, ".3g")} &gt; grad_tol {num(tol, ".3g")} <span class="bad">not critical</span>'


def _fraction(value: Any, err: Any, how: str) -> str:
    x, e = number(value), number(err)
    if value is None:
        return '<span class="na">—</span> (only part of the spectrum, and no estimate)'
    if x is None or not math.isfinite(x):
        return num(value)
    if err is None:
        return f'<span class="val">{num(x, ".4g")}</span>{meter(x)} <span class="how">{how}</span>'
    if e is None or not math.isfinite(e):
        return f'<span class="val">{num(x, ".4g")} ± {num(err)}</span>{meter(x)}'
    shown = f'<span class="val">{num(x, ".4g")} ± {num(e, ".2g")}</span>'
    return f'{shown}{meter(x, e)} <span class="how">{how}</span>'


def _inertia(inertia: Any, estimate: bool) -> str:
    if inertia is None:
        return '<span class="na">—</span>'
    if not isinstance(inertia, Mapping):
        return f'<span class="invalid">invalid ({text(inertia, 40)})</span>'
    counts = ", ".join(num(inertia.get(k), ",.0f") for k in ("n_neg", "n_zero", "n_pos"))
    return f"({counts})" + (" estimated" if estimate else "")


def extremes_section(extremes: Any, threshold: Any) -> str:
    """The extreme eigenvalues with their residuals ‖Hu − λu‖, and their sign against the band.

    Args:
        extremes: the record's ``"extremes"`` list of {end, value, residual}, or None.
        threshold: the verdict's zero band (|λ| ≤ it is zero), or None.
    """
    title = "Extreme eigenvalues"
    if extremes is None:
        return section_html("extremes", title, note("No eigenvalues in this record."))
    if not isinstance(extremes, list):
        return section_html("extremes", title, note("Malformed: not a list.", "problem"))
    thr = number(threshold)
    rows = [_extreme_row(e, thr) for e in extremes[:_MAX_ROWS]]
    head = "<tr><th>end</th><th>λ</th><th>residual ‖Hu − λu‖</th><th>sign</th></tr>"
    table = f'<table class="grid">\n{head}\n' + "\n".join(rows) + "\n</table>"
    if len(extremes) > _MAX_ROWS:
        table += note(f"Only the first {_MAX_ROWS} of {len(extremes):,} shown.", "problem")
    return section_html("extremes", title, table)


def _extreme_row(entry: Any, thr: float | None) -> str:
    if not isinstance(entry, Mapping):
        return f'<tr><td colspan="4" class="invalid">invalid entry ({text(entry, 40)})</td></tr>'
    lam = number(entry.get("value"))
    sign = '<span class="na">—</span>'
    if lam is not None and math.isfinite(lam) and thr is not None and math.isfinite(thr):
        sign = "zero" if abs(lam) <= thr else ("negative" if lam < 0 else "positive")
        sign = f'<span class="sign-{sign}">{sign}</span>'
    return (
        f"<tr><td>{text(entry.get('end', '—'))}</td><td>{num(entry.get('value'), '.6g')}</td>"
        f"<td>{num(entry.get('residual'), '.2g')}</td><td>{sign}</td></tr>"
    )


def escape_section(escape: Mapping[str, Any] | None, problem: str | None) -> str:
    """The escape direction: its curvature and the predicted loss decrease at a unit step.

    Args:
        escape: the record's ``"escape"`` section, or None.
        problem: why ``escape`` is None.
    """
    title = "Way down: the escape direction"
    if escape is None:
        why = "none is needed at a minimum" if problem == "not in this record" else problem
        return section_html("escape", title, note(f"No escape direction ({why})."))
    higher = escape.get("higher_order")
    origin = flag(
        higher,
        "a null direction along which the loss fell (higher-order saddle)",
        "the eigenvector of the most negative eigenvalue",
    )
    rows = [
        ("direction u", origin),
        ("curvature uᵀHu", num(escape.get("curvature"), ".6g")),
        (
            "predicted ΔL at t = 1",
            f"{num(escape.get('predicted_decrease_at_unit_step'), '.4g')} "
            "(quadratic model L(θ + t·u) − L(θ) at a unit step)",
        ),
    ]
    return section_html("escape", title, kv_table(rows))
