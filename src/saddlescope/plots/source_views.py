"""The source's figure three ways: naive float32, naive float64, and certified critical points.

For a study run with ``search.gradnorm_phase`` (the preset ``presets/source.toml``): the left
two panels are what the source's protocol reports at the end of its gradient-norm phase — the
share of Hessian eigenvalues > 0, in float32 and in float64 — for every run; the right one is
saddlescope's view: only the runs whose search reached ‖∇L‖ ≤ grad_tol off kinks, at their
minimum ratio n₊/n with the zero band counted as zero; the runs it excludes (not converged,
gradient-flat, on a kink) are drawn apart, in a grey strip left of the axis, at their loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from saddlescope.plots.common import KIND_STYLE

__all__ = ["plot_source_views"]

_MARKERS = ("o", "s", "^", "D", "v")
_EXCLUDED_X = -0.12  # where the excluded runs are drawn, apart from the ratio axis


def plot_source_views(records: Sequence[Any]) -> Figure:
    """Loss against minimum ratio three ways (module docstring), marker by activation.

    Args:
        records: survey records whose ``search`` evidence holds ``naive`` (the others are
            left out).

    Returns:
        The figure (write it with :func:`~saddlescope.plots.save`).
    """
    runs = [r for r in records if "naive" in r.search]
    acts = sorted({r.activation for r in runs})
    marker = {a: _MARKERS[i % len(_MARKERS)] for i, a in enumerate(acts)}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), sharey=True)
    for ax, key, dtype in (
        (axes[0], "ratio_float32", "float32"),
        (axes[1], "ratio_float64", "float64"),
    ):
        for a in acts:
            pts = [r for r in runs if r.activation == a]
            ax.scatter(
                [r.search["naive"][key] for r in pts],
                [r.search["naive"]["loss"] for r in pts],
                marker=marker[a], s=30, alpha=0.7, label=a, color="tab:blue",
            )  # fmt: skip
        grads = sorted(r.search["naive"]["grad_norm"] for r in runs)
        median = grads[len(grads) // 2] if grads else float("nan")
        _axes(ax, f"source protocol, {dtype}: eig > 0 at the ‖g‖² minimum\n"
                  f"({len(runs)} runs, median ‖g‖ {median:.1g})")  # fmt: skip
        ax.set_xlim(-0.02, 1.05)
    _certified(axes[2], runs, marker)
    axes[0].set_ylabel("training loss")
    axes[0].legend(title="activation", fontsize=8)
    fig.tight_layout()
    return fig


def _certified(ax: Axes, runs: Sequence[Any], marker: dict[str, str]) -> None:
    """The certified points by kind, and the excluded runs apart at their end loss."""
    ok = [r for r in runs if r.usable]
    for kind, (colour, _) in KIND_STYLE.items():
        for a, m in marker.items():
            pts = [r for r in ok if r.kind == kind and r.activation == a]
            if pts:
                ax.scatter(
                    [r.minimum_ratio for r in pts], [r.loss_critical for r in pts],
                    marker=m, color=colour, s=30, alpha=0.8, edgecolors="black",
                    linewidths=0.4, label=kind if a == next(iter(marker)) else None,
                )  # fmt: skip
    bad = [r for r in runs if not r.usable]
    if bad:
        ax.scatter(
            [_EXCLUDED_X] * len(bad), [r.loss_critical for r in bad],
            marker="_", color="tab:gray", s=80, label=f"excluded ({len(bad)})",
        )  # fmt: skip
        ax.axvspan(_EXCLUDED_X - 0.06, _EXCLUDED_X + 0.06, color="0.92", zorder=0)
    tol = runs[0].tolerance if runs else None
    band = "" if tol is None else f"‖g‖ ≤ {tol.grad_tol:g}, |λ| ≤ {tol.rtol:g}·max|λ| is zero"
    _axes(ax, f"saddlescope: certified critical points ({len(ok)} of {len(runs)})\n{band}")
    ax.set_xlim(_EXCLUDED_X - 0.08, 1.05)
    if ok or bad:
        ax.legend(fontsize=8, loc="best")


def _axes(ax: Axes, title: str) -> None:
    ax.set_yscale("log")
    ax.set_xlabel("minimum ratio (share of eigenvalues > 0 / n₊/n)")
    ax.set_title(title, fontsize=9)
    ax.axvline(1.0, color="black", ls="--", lw=0.8)
