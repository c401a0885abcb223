"""The survey's figures: where training stops, over many runs (MISSION §6).

Each takes survey records (:class:`saddlescope.survey.SurveyRecord` or anything with the same
attributes): ``num_params``, ``usable`` (converged and not gradient-flat), ``kind``,
``minimum_ratio``, ``index``, ``loss_critical``, and for spectra ``eigenvalues``, ``hidden`` and
``seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from saddlescope.plots.common import KIND_STYLE

__all__ = ["plot_index_histogram", "plot_loss_vs_ratio", "plot_spectra"]

_SIZE_MARKERS = ("o", "s", "^", "D", "v", "P", "*", "X", "<", ">")


def _scatter_size(
    ax: Axes, records: Sequence[Any], n: int, marker: str, show_excluded: bool
) -> None:
    """The runs of one model size: usable ones coloured by kind, excluded ones hollow grey."""
    for kind, (colour, _) in KIND_STYLE.items():
        pts = [r for r in records if r.num_params == n and r.usable and r.kind == kind]
        if pts:
            ax.scatter(
                [r.minimum_ratio for r in pts],
                [r.loss_critical for r in pts],
                color=colour,
                marker=marker,
                s=40,
                alpha=0.8,
                edgecolors="black",
                linewidths=0.4,
            )
    if show_excluded:
        bad = [r for r in records if r.num_params == n and not r.usable]
        if bad:
            ax.scatter(
                [r.minimum_ratio for r in bad],
                [r.loss_critical for r in bad],
                facecolors="none",
                edgecolors="tab:gray",
                marker=marker,
                s=40,
            )


def _ratio_legend(
    records: Sequence[Any], marker: dict[int, str], show_excluded: bool
) -> list[Line2D]:
    """Legend entries: one per kind seen (colour), one per model size (marker), the excluded."""
    kinds = sorted({r.kind for r in records if r.usable})
    handles = [Line2D([], [], color=KIND_STYLE[k][0], marker="o", ls="", label=k) for k in kinds]
    handles += [
        Line2D([], [], color="black", marker=m, ls="", mfc="none", label=f"{n} params")
        for n, m in marker.items()
    ]
    if show_excluded:
        handles.append(
            Line2D(
                [],
                [],
                color="tab:gray",
                marker="o",
                ls="",
                mfc="none",
                label="not converged / gradient-flat",
            )
        )
    return handles


def _ratio_axes(ax: Axes, records: Sequence[Any], show_excluded: bool, title: str) -> None:
    """Scales, limits, labels and title of the loss-vs-ratio figure."""
    ax.set_yscale("symlog", linthresh=1e-3)
    shown = [r.loss_critical for r in records if r.usable or show_excluded]
    ax.set_ylim(-1e-4, 2 * max(shown, default=1.0) or 1.0)
    ax.set_xlabel("minimum ratio  n₊ / n  (fraction of positive Hessian eigenvalues)")
    ax.set_ylabel("training loss at the critical point")
    ax.set_xlim(-0.02, 1.05)
    used = sum(r.usable for r in records)
    ax.set_title(title or f"Critical points reached in training ({used} of {len(records)} runs)")


def plot_loss_vs_ratio(
    records: Sequence[Any], *, show_excluded: bool = False, title: str = ""
) -> Figure:
    """Loss at each critical point against its minimum ratio n₊/n (MISSION §6's figure).

    Colour by kind, marker by model size; the ratio-1 line (strict local minima) is drawn.

    Args:
        records: survey records (see the module docstring for the attributes read).
        show_excluded: also draw the runs that did not converge or are gradient-flat, hollow
            in grey (they are left out otherwise).
        title: the figure's title; empty gives "Critical points reached in training (u of n
            runs)".

    Returns:
        The figure (write it with :func:`~saddlescope.plots.save`).
    """
    fig, ax = plt.subplots(figsize=(8.5, 5))
    sizes = sorted({r.num_params for r in records})
    marker = {n: _SIZE_MARKERS[i % len(_SIZE_MARKERS)] for i, n in enumerate(sizes)}
    for n in sizes:
        _scatter_size(ax, records, n, marker[n], show_excluded)
    ax.axvline(1.0, color="black", ls="--", lw=1)
    ax.text(
        0.99,
        0.98,
        "local minima: ratio 1",
        transform=ax.get_xaxis_transform(),
        ha="right",
        va="top",
        fontsize=8,
    )
    handles = _ratio_legend(records, marker, show_excluded)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _ratio_axes(ax, records, show_excluded, title)
    fig.tight_layout()
    return fig


def plot_index_histogram(records: Sequence[Any], *, bins: int = 20) -> Figure:
    """Histogram of the index n₋/n over the usable runs, stacked by model size.

    Args:
        records: survey records (see the module docstring for the attributes read).
        bins: how many equal bins cover [0, 1].

    Returns:
        The figure (write it with :func:`~saddlescope.plots.save`).
    """
    fig, ax = plt.subplots(figsize=(6, 4))
    sizes = sorted({r.num_params for r in records})
    data = [[r.index for r in records if r.usable and r.num_params == n] for n in sizes]
    edges = np.linspace(0, 1, bins + 1).tolist()
    ax.hist(data, bins=edges, stacked=True, label=[f"{n} params" for n in sizes])
    ax.set_xlabel("index  n₋ / n")
    ax.set_ylabel("critical points")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_spectra(records: Sequence[Any], *, max_points: int = 6) -> Figure:
    """Sorted eigenvalues of chosen critical points against rank / n (symlog scale), one line each.

    Args:
        records: survey records holding ``eigenvalues`` (e.g. from
            :func:`saddlescope.survey.summary.representative`).
        max_points: draw at most this many, the first ones.

    Returns:
        The figure (write it with :func:`~saddlescope.plots.save`).
    """
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in list(records)[:max_points]:
        lam = np.sort(r.eigenvalues)
        ax.plot(
            np.arange(1, lam.size + 1) / lam.size,
            lam,
            marker=".",
            label=f"{r.kind}, loss {r.loss_critical:.3g}, [{r.hidden}] seed {r.seed}",
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_xlabel("eigenvalue rank / n")
    ax.set_ylabel("Hessian eigenvalue")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
