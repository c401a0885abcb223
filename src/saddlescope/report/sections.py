"""The rest of the report: the density, the landscape, how it was computed, what was analysed.

The density is drawn twice (linear and log density axis) and the page switches between the two
with a pair of radio buttons and CSS alone (``:checked ~``), so the page needs no script. A
series that cannot be drawn (not numbers, non-finite, wrong length) is explained in the page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from saddlescope.report.figures import density_figures, draw, landscape_figure
from saddlescope.report.markup import kv_table, note, section_html, value_table
from saddlescope.report.values import flag, num, number, series, text

__all__ = [
    "computation_section",
    "density_section",
    "description_section",
    "landscape_section",
]


def density_section(
    density: Mapping[str, Any] | None, problem: str | None, threshold: Any, extremes: Any
) -> str:
    """The SLQ (or exact, smoothed) spectral density, with a linear/log switch.

    Args:
        density: the record's ``"density"`` section ({grid, values, …}), or None.
        problem: why ``density`` is None.
        threshold: the verdict's zero band, shaded in the figure (or None).
        extremes: the record's ``"extremes"``; their values are ticked along the axis.
    """
    title = "Spectral density"
    if density is None:
        return section_html("density", title, note(f"No spectral density: {problem}."))
    grid, why = series("grid", density.get("grid"))
    values, why_v = series("values", density.get("values"))
    why = why or why_v
    if grid is not None and values is not None:
        why = _density_problem(grid, values)
    caption = _density_caption(density)
    if why is not None or grid is None or values is None:
        return section_html("density", title, caption + note(f"Not drawn: {why}.", "problem"))
    thr = number(threshold)
    figs, why = draw(
        density_figures, grid, values, threshold=thr, eigenvalues=_eigenvalues(extremes)
    )
    if figs is None:
        return section_html("density", title, caption + note(f"Not drawn: {why}.", "problem"))
    linear, log = figs
    switch = (
        '<div class="switch">\n'
        '<input type="radio" name="density-scale" id="density-linear" checked>'
        '<label for="density-linear">linear</label>\n'
        '<input type="radio" name="density-scale" id="density-log">'
        '<label for="density-log">log scale</label>\n'
        f'<div class="fig fig-linear">{linear}</div>\n<div class="fig fig-log">{log}</div>\n'
        "</div>"
    )
    return section_html("density", title, caption + switch)


def _density_problem(grid: list[float], values: list[float]) -> str | None:
    if len(grid) != len(values):
        return f"grid has {len(grid)} points but values {len(values)}"
    if any(b <= a for a, b in zip(grid, grid[1:], strict=False)):
        return "grid is not increasing"
    if min(values) < 0:
        return "values has negative entries (a density is ≥ 0)"
    if max(values) <= 0:
        return "values are all zero"
    return None


def _density_caption(density: Mapping[str, Any]) -> str:
    source = density.get("source")
    if source == "eigenvalues":
        how = "the complete spectrum, each eigenvalue smoothed by a narrow Gaussian"
    else:
        probes, steps = num(density.get("probes"), ",.0f"), num(density.get("lanczos_steps"))
        how = f"stochastic Lanczos quadrature: {probes} probes × {steps} Lanczos steps"
        if source not in (None, "slq"):
            how += f" (source {text(source)})"
    hvps = density.get("hvps")
    cost = "" if hvps is None else f", {num(hvps, ',.0f')} Hessian-vector products"
    return (
        f'<p class="caption">From {how}{cost}. Shaded: the zero band; ticks: the computed '
        "extreme eigenvalues. The log scale shows outliers beside the bulk.</p>\n"
    )


def _eigenvalues(extremes: Any) -> list[float]:
    if not isinstance(extremes, list):
        return []
    values = [number(e.get("value")) for e in extremes if isinstance(e, Mapping)]
    return [x for x in values if x is not None and math.isfinite(x)]


def landscape_section(landscape: Mapping[str, Any] | None, problem: str | None) -> str:
    """The loss along the escape direction, beside its quadratic model.

    Args:
        landscape: the record's ``"landscape"`` section ({t, loss, quadratic}), or None.
        problem: why ``landscape`` is None.
    """
    title = "Landscape along the escape direction"
    if landscape is None:
        return section_html("landscape", title, note(f"No landscape: {problem}."))
    t, why = series("t", landscape.get("t"))
    loss, why_l = series("loss", landscape.get("loss"))
    why = why or why_l
    if t is not None and loss is not None and len(t) != len(loss):
        why = f"t has {len(t)} points but loss {len(loss)}"
    if why is not None or t is None or loss is None:
        return section_html("landscape", title, note(f"Not drawn: {why}.", "problem"))
    quad, why_q = series("quadratic", landscape.get("quadratic"))
    if quad is not None and len(quad) != len(t):
        why_q = f"quadratic has {len(quad)} points but t {len(t)}"
        quad = None
    svg, why = draw(landscape_figure, t, loss, quad)
    if svg is None:
        return section_html("landscape", title, note(f"Not drawn: {why}.", "problem"))
    body = (
        '<p class="caption">The loss at θ + t·u for the unit escape direction u (solid), and '
        "the quadratic model from the gradient and the curvature at θ (dashed).</p>\n"
        f'<div class="fig">{svg}</div>'
    )
    if quad is None:
        body += note(f"Quadratic model not drawn: {why_q}.", "problem")
    return section_html("landscape", title, body)


def computation_section(path: Mapping[str, Any] | None, problem: str | None, stages: Any) -> str:
    """How the spectrum's path was chosen (dense or Lanczos, and why), and each stage's time.

    Args:
        path: the record's ``"path"`` section, or None.
        problem: why ``path`` is None.
        stages: the record's ``"stages"`` list of {name, seconds}, or None.
    """
    if path is None:
        body = note(f"No path: {problem}.")
    else:
        rows = [
            ("method", text(path.get("method", "—"))),
            ("why", text(path.get("why", "—"))),
            ("Hessian-vector products", num(path.get("hvps"), ",.0f")),
        ]
        if "complete" in path:
            rows.append(("complete spectrum", flag(path.get("complete"))))
        if "seconds" in path:
            rows.append(("seconds", num(path.get("seconds"), ".3g")))
        body = kv_table(rows)
    return section_html("computation", "How it was computed", body + "\n" + _stages(stages))


def _stages(stages: Any) -> str:
    if stages is None:
        return note("No stage timings in this record.")
    if not isinstance(stages, list):
        return note("Stage timings malformed: not a list.", "problem")
    rows, seconds = [], []
    for stage in stages:
        entry = stage if isinstance(stage, Mapping) else {"name": "invalid entry"}
        sec = number(entry.get("seconds"))
        sec = sec if sec is not None and math.isfinite(sec) and sec >= 0 else 0.0
        rows.append((text(entry.get("name", "—")), num(entry.get("seconds"), ".3g")))
        seconds.append(sec)
    total = sum(seconds)
    cells = []
    for (name, shown), sec in zip(rows, seconds, strict=True):
        share = f"{100 * sec / total:.1f}%" if total > 0 else "0%"
        bar = f'<span class="share"><span style="width:{share}"></span></span>'
        cells.append(f"<tr><td>{name}</td><td>{shown} s</td><td>{bar}</td></tr>")
    cells.append(f'<tr class="total"><td>total</td><td>{total:.3g} s</td><td></td></tr>')
    head = '<table class="grid stages">\n<tr><th>stage</th><th>time</th><th></th></tr>\n'
    return head + "\n".join(cells) + "\n</table>"


_ORDER = {
    "model": ("factory", "checkpoint", "num_params", "param_filter", "loss"),
    "data": ("factory", "num_batches", "num_samples", "streamed"),
    "objective": ("num_params", "num_samples", "num_batches", "dtype", "device", "norm_stats"),
}


def description_section(record: Mapping[str, Any]) -> str:
    """What was analysed: the model, the data and the objective, as the record gives them.

    Args:
        record: the checked record (its ``"model"``, ``"data"`` and ``"objective"`` sections
            are free-form and shown key by key, escaped).
    """
    parts = []
    for key, order in _ORDER.items():
        value = record.get(key)
        if value is None:
            parts.append(f"<h3>{key}</h3>\n" + note("Not in this record."))
        elif not isinstance(value, Mapping):
            parts.append(f"<h3>{key}</h3>\n" + note("Malformed: not an object.", "problem"))
        else:
            parts.append(f"<h3>{key}</h3>\n" + value_table(value, order))
    body = '<div class="columns">\n' + "\n".join(f"<div>{p}</div>" for p in parts) + "\n</div>"
    return section_html("description", "Model, data and objective", body)
