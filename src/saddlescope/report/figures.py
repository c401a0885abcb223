"""The report's figures, drawn by matplotlib as inline SVG that a page can embed as it is.

Each figure is a :class:`matplotlib.figure.Figure` (no pyplot: no global state, no window),
written as SVG with text kept as text (``svg.fonttype="none"``: searchable, small). The SVG is
then made fit to sit inside an HTML page beside others: the XML prologue, DOCTYPE, metadata and
global ``<style>`` are dropped, every ``id`` (and every reference to one) gets the figure's own
prefix so that figures cannot collide, and namespace declarations go (HTML parses inline SVG
into the SVG namespace itself), so the page holds no URL at all. Hash salts are fixed, so the
same numbers give the same page. Only numbers reach these functions; no text from a record is
drawn.
"""

from __future__ import annotations

import html
import io
import math
import re
import warnings
from collections.abc import Callable, Sequence
from typing import TypeVar

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["density_figures", "draw", "inline_svg", "landscape_figure"]

_SIZE = (7.2, 3.1)  # inches: 518 × 223 pt, scaled to the column by the page's CSS
_NEG, _POS, _LINE, _MODEL = "#c0392b", "#1f5fa8", "#1f3b5a", "#d07b12"
_LOG_FLOOR = 1e-8  # the log-scale density axis spans at most 8 decades below its peak

T = TypeVar("T")


def draw(figure: Callable[..., T], *args: object, **kwargs: object) -> tuple[T | None, str | None]:
    """Call a figure function as (result, None), or (None, why matplotlib could not draw it).

    The series reaching a figure are checked (finite, of sane size), but a record can still hold
    numbers no axis can show (a grid a few ulps wide); matplotlib's error then becomes a
    sentence in the page, and its numerical warnings are not printed.

    Args:
        figure: :func:`density_figures` or :func:`landscape_figure`.
        *args: its positional arguments.
        **kwargs: its keyword arguments.
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return figure(*args, **kwargs), None
        except (ValueError, ArithmeticError, RuntimeError) as err:  # LinAlgError is a ValueError
            return None, f"matplotlib could not draw it ({type(err).__name__}: {str(err)[:120]})"


def inline_svg(fig: Figure, name: str, label: str) -> str:
    """``fig`` as an ``<svg>`` element for an HTML page, its ids prefixed by ``name``.

    Args:
        fig: the figure to write (it is not shown, and nothing else holds it).
        name: a short identifier (letters, digits, "-") unique within the page.
        label: what the figure shows, for screen readers (escaped here).
    """
    if not re.fullmatch(r"[a-z][a-z0-9-]*", name):
        raise ValueError(f"figure name {name!r} must be lower-case letters, digits and '-'")
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<style[^>]*>.*?</style>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', rf'href="#{name}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(label)}" ', 1)


def density_figures(
    grid: Sequence[float],
    values: Sequence[float],
    *,
    threshold: float | None = None,
    eigenvalues: Sequence[float] = (),
) -> tuple[str, str]:
    """The spectral density, twice: linear and logarithmic density axis (inline SVGs).

    The log scale is what shows a few outliers beside a bulk near zero; it spans at most
    eight decades below the peak (values below are drawn on the floor).

    Args:
        grid: eigenvalue grid (finite, increasing).
        values: the density on ``grid`` (finite, ≥ 0, largest > 0).
        threshold: half-width of the zero band (|λ| ≤ it counts as zero), shaded; or None.
        eigenvalues: computed eigenvalues to mark as ticks along the axis (the extremes).
    """
    peak = max(values)
    floor = max(peak * _LOG_FLOOR, min((v for v in values if v > 0), default=peak))
    out = []
    for scale in ("linear", "log"):
        fig = Figure(figsize=_SIZE, layout="constrained")
        ax = fig.add_subplot()
        shown = values if scale == "linear" else [max(v, floor) for v in values]
        ax.fill_between(grid, shown, min(shown), color=_LINE, alpha=0.15, linewidth=0)
        ax.plot(grid, shown, color=_LINE, linewidth=1.4, label="density")
        ax.set_yscale(scale)
        if scale == "log":
            ax.set_ylim(floor, peak * 3)
        else:
            ax.set_ylim(0, peak * 1.08)
        _decorate_spectrum(ax, threshold, eigenvalues)
        ax.set_xlabel("eigenvalue λ")
        ax.set_ylabel(f"density ({scale} scale)")
        fig.suptitle("Hessian eigenvalue density", fontsize=10)
        out.append(inline_svg(fig, f"density-{scale}", f"eigenvalue density, {scale} scale"))
    return out[0], out[1]


def _decorate_spectrum(ax: Axes, threshold: float | None, eigenvalues: Sequence[float]) -> None:
    """Shade the zero band, tick the computed eigenvalues (red below zero, blue above)."""
    if threshold is not None and math.isfinite(threshold) and threshold > 0:
        ax.axvspan(-threshold, threshold, color="#888888", alpha=0.25, linewidth=0)
        ax.plot([], [], color="#888888", alpha=0.5, linewidth=6, label="zero band |λ| ≤ thr.")
    ax.axvline(0.0, color="#555555", linewidth=0.6)
    neg = [x for x in eigenvalues if x < 0]
    pos = [x for x in eigenvalues if x >= 0]
    for xs, colour, label in ((neg, _NEG, "λ < 0 computed"), (pos, _POS, "λ ≥ 0 computed")):
        if xs:
            ax.vlines(xs, 0, 0.09, transform=ax.get_xaxis_transform(), colors=colour, label=label)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.grid(alpha=0.25)


def landscape_figure(
    t: Sequence[float], loss: Sequence[float], quadratic: Sequence[float] | None = None
) -> str:
    """The loss along the escape direction beside its quadratic model (inline SVG).

    The y-range covers the loss and lets the quadratic model extend it by at most the loss's
    own range on each side, so that a model that runs away does not flatten the loss.

    Args:
        t: step lengths along the unit escape direction (finite, increasing; θ at 0).
        loss: L(θ + t·u) at each ``t``.
        quadratic: L + t·gᵀu + ½λt² at each ``t``, or None.
    """
    fig = Figure(figsize=_SIZE, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(t, loss, "o-", color=_LINE, markersize=3, linewidth=1.4, label="loss L(θ + t·u)")
    lo, hi = min(loss), max(loss)
    span = (hi - lo) or max(abs(hi), 1e-12) * 1e-3
    if quadratic is not None:
        ax.plot(t, quadratic, "--", color=_MODEL, linewidth=1.4, label="L + t·gᵀu + ½λt²")
        lo = max(min(lo, min(quadratic)), lo - span)
        hi = min(max(hi, max(quadratic)), hi + span)
    ax.set_ylim(lo - 0.06 * (hi - lo or span), hi + 0.06 * (hi - lo or span))
    ax.axvline(0.0, color="#555555", linewidth=0.6)
    ax.annotate("θ", (0.0, 0.0), xycoords=("data", "axes fraction"), xytext=(4, 4),
                textcoords="offset points", fontsize=9)  # fmt: skip
    ax.set_xlabel("step t along the escape direction u (‖u‖ = 1)")
    ax.set_ylabel("loss")
    ax.legend(loc="best", fontsize=8, frameon=False)
    ax.grid(alpha=0.25)
    fig.suptitle("1-D landscape along the escape direction", fontsize=10)
    return inline_svg(fig, "landscape", "loss along the escape direction")
