"""Curves on one pair of axes: losses along lines, eigenvalues by rank, losses along escapes.

The loss along lines through θ with their quadratic models, the Hessian spectrum sorted by rank,
and the loss against step of escape paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from saddlescope.errors import InvalidInputError
from saddlescope.landscape import Line
from saddlescope.spectrum import Spectrum

if TYPE_CHECKING:
    from saddlescope import EscapeResult

__all__ = ["plot_eigenvalues", "plot_escape_paths", "plot_line"]

YSCALES = ("auto", "linear", "symlog")


def _one_each(name: str, values: Sequence[Any] | None, n: int) -> list[Any]:
    """``values`` as a list of one per line (None → all None), refused when the count differs."""
    out = [None] * n if values is None else list(values)
    if len(out) != n:
        raise InvalidInputError(f"got {len(out)} {name} for {n} lines; give one (or None) each")
    return out


def _model_label(slope: float, lam: float) -> str:
    """Legend text of a quadratic model: "L₀ ± s·t + ½λt², λ = …"."""
    head = f"L₀ {'+−'[slope < 0]} {abs(slope):.2g}·t + ½λt²" if slope else "L₀ + ½λt²"
    return head + f",  λ = {lam:.4g}"


def _draw_model(ax: Axes, ln: Line, lam: float, slope: float | None, colour: str) -> None:
    """The dashed quadratic model L(θ) + s·t + ½·λ·‖d‖²·t² along ``ln``."""
    t, loss = ln.alphas.numpy(), ln.losses.numpy()
    base = (
        ln.origin_loss
        if ln.origin_loss is not None
        else float(np.interp(0.0, t, loss))  # a Line built by hand: read it off the curve
    )
    d2 = float(ln.direction @ ln.direction)
    s = 0.0 if slope is None else float(slope)
    ax.plot(
        t,
        base + s * t + 0.5 * lam * d2 * t**2,
        color=colour,
        lw=1.2,
        ls="--",
        label=_model_label(s, lam),
    )


def _frame_to_data(ax: Axes, lines: Sequence[Line]) -> None:
    """Y limits around the data with a margin: the quadratic models may leave the frame."""
    allv = np.concatenate([ln.losses.numpy() for ln in lines])
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.08 * (hi - lo if hi > lo else max(abs(hi), 1.0))
    ax.set_ylim(lo - pad, hi + pad)


def plot_line(
    lines: Line | Sequence[Line],
    *,
    labels: Sequence[str] | None = None,
    eigenvalues: float | Sequence[float | None] | None = None,
    slopes: Sequence[float | None] | None = None,
    title: str = "",
    xlabel: str = "t   (θ + t·d)",
    ylabel: str = "loss",
) -> Figure:
    """Loss curves t ↦ L(θ + t·d), several on one axes, each with its quadratic model if λ is given.

    The model drawn (dashed) is L(θ) + s·t + ½·λ·‖d‖²·t²: the second-order Taylor model along an
    eigenvector d of H(θ) with eigenvalue λ, s = ∇L(θ)ᵀd the slope (0 at a critical point).
    L(θ) is the line's ``origin_loss`` (read off the curve at t = 0 when it has none).

    Args:
        lines: one line or several (from ``slice_1d`` or ``line``).
        labels: one legend label per line; None gives "direction 1", "direction 2", ….
        eigenvalues: one λ (or None: no model) per line, or a single λ for all of them.
        slopes: one slope s (or None for 0) per line; None sets every slope to 0.
        title: the figure's title.
        xlabel: the label of the t axis.
        ylabel: the label of the loss axis.

    Returns:
        The figure (write it with :func:`~saddlescope.plots.save`).

    Raises:
        InvalidInputError: when there is no line, or ``labels``, ``eigenvalues`` or ``slopes``
            does not hold one entry per line.
    """
    lines = [lines] if isinstance(lines, Line) else list(lines)
    if not lines:
        raise InvalidInputError("plot_line needs at least one Line (from slice_1d or line)")
    if labels is not None and len(labels) != len(lines):
        raise InvalidInputError(f"got {len(labels)} labels for {len(lines)} lines; give one each")
    if eigenvalues is None or isinstance(eigenvalues, (int, float)):
        lams: list[float | None] = [eigenvalues] * len(lines)
    else:
        lams = _one_each("eigenvalues", eigenvalues, len(lines))
    slope_list = _one_each("slopes", slopes, len(lines))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (ln, lam, slope) in enumerate(zip(lines, lams, slope_list)):
        colour = colours[i % len(colours)]
        label = labels[i] if labels is not None else f"direction {i + 1}"
        ax.plot(ln.alphas.numpy(), ln.losses.numpy(), color=colour, lw=2, label=label)
        if lam is not None:
            _draw_model(ax, ln, lam, slope, colour)
    _frame_to_data(ax, lines)
    ax.axvline(0.0, color="black", lw=0.6, ls=":")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _scatter_by_sign(ax: Axes, lam: np.ndarray, tol: float) -> None:
    """Eigenvalues by rank: negative red, in the zero band grey, positive blue, counted."""
    rank = np.arange(1, lam.size + 1)
    size = 30 if lam.size <= 60 else 8
    for mask, colour, name in (
        (lam < -tol, "tab:red", "n₋"),
        (np.abs(lam) <= tol, "tab:gray", "n₀"),
        (lam > tol, "tab:blue", "n₊"),
    ):
        label = f"{name} = {int(mask.sum())}"  # of the eigenvalues held
        ax.scatter(rank[mask], lam[mask], color=colour, s=size, zorder=3, label=label)


def _set_yscale(ax: Axes, lam: np.ndarray, tol: float, yscale: str) -> None:
    """Symlog (the zero band as its linear part) when asked, or on "auto" for a wide spectrum."""
    outside = np.abs(lam)[np.abs(lam) > tol]
    wide = outside.size > 0 and float(outside.max()) > 1e3 * float(outside.min())
    if yscale == "symlog" or (yscale == "auto" and wide):
        biggest = float(np.abs(lam).max())
        linthresh = tol if tol > 0 else max(biggest * 1e-6, 1e-12)
        ax.set_yscale("symlog", linthresh=linthresh)


def _spectrum_title(spectrum: Spectrum, title: str) -> str:
    """The given title, or one naming the index and minimum ratio when the spectrum has them."""
    if not title and spectrum.inertia is not None:
        title = (
            f"Hessian spectrum: index n₋/n = {spectrum.inertia.index:.3g}, "
            f"minimum ratio n₊/n = {spectrum.inertia.minimum_ratio:.3g}"
        )
    return title or "Hessian spectrum (extreme eigenvalues)"


def plot_eigenvalues(spectrum: Spectrum, *, title: str = "", yscale: str = "auto") -> Figure:
    """Sorted Hessian eigenvalues by rank, coloured by sign, with the zero band |λ| ≤ tol shaded.

    The legend holds the counts n₋, n₀, n₊ at the spectrum's threshold, over the eigenvalues
    held (for a Lanczos spectrum only the extremes).

    Args:
        spectrum: the spectrum to draw (its ``threshold`` is the zero band's half-width).
        title: the figure's title; empty gives one with the index and the minimum ratio (or
            "Hessian spectrum (extreme eigenvalues)" for a partial spectrum).
        yscale: "linear", "symlog", or "auto": symlog, with the zero band as its linear part,
            when the |λ| outside the band span over 3 decades.

    Returns:
        The figure (write it with :func:`~saddlescope.plots.save`).

    Raises:
        InvalidInputError: for an unknown ``yscale`` or a spectrum without eigenvalues.
    """
    if yscale not in YSCALES:
        raise InvalidInputError(f"unknown yscale {yscale!r}; choose 'auto', 'linear' or 'symlog'")
    lam = np.sort(spectrum.eigenvalues.numpy())
    if lam.size == 0:
        raise InvalidInputError("the spectrum holds no eigenvalues to plot")
    tol = spectrum.threshold
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.axhspan(-tol, tol, color="tab:gray", alpha=0.25, lw=0, label=f"|λ| ≤ tol = {tol:.3g}")
    ax.axhline(0.0, color="black", lw=0.6)
    ax.plot(np.arange(1, lam.size + 1), lam, color="black", lw=0.6, alpha=0.6)
    _scatter_by_sign(ax, lam, tol)
    _set_yscale(ax, lam, tol, yscale)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    held = "all" if spectrum.complete else f"{lam.size} extreme"
    ax.set_xlabel(f"rank ({held} of n = {spectrum.num_params}, {spectrum.method})")
    ax.set_ylabel("Hessian eigenvalue λ")
    ax.set_title(_spectrum_title(spectrum, title))
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_escape_paths(results: Sequence[EscapeResult], *, title: str = "") -> Figure:
    """Loss against step for each escape method from one start, the target loss drawn.

    Log loss scale (losses floored at 1e-300), symlog step scale (linear below 10 steps).

    Args:
        results: escape results from one start (e.g. from ``compare_escapes``); each is labelled
            with its method and the steps it took to reach the target.
        title: the figure's title.

    Returns:
        The figure (write it with :func:`~saddlescope.plots.save`).
    """
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in results:
        steps = [s.step for s in r.path]
        losses = [max(s.loss, 1e-300) for s in r.path]
        label = f"{r.method}: " + (f"{r.steps_to_target} steps" if r.reached else "not reached")
        ax.plot(steps, losses, marker=".", ms=3, label=label)
    target = next((r.target_loss for r in results if r.target_loss is not None), None)
    if target is not None and target > 0:
        ax.axhline(target, color="black", ls="--", lw=1, label=f"target {target:.3g}")
    ax.set_yscale("log")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
