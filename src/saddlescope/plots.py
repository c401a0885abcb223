"""Figures drawn from result objects (they compute nothing the results do not hold).

* :func:`plot_surface` — the loss over a plane as a 3-D surface, critical points marked;
* :func:`plot_contour` — the same plane as a contour map, critical points marked by kind, extra
  curves (e.g. a known critical set) and escape arrows drawn on top.

Critical points and arrows are placed by their coordinates in the plane's basis,
a = ⟨θ − origin, d1⟩/‖d1‖², b = ⟨θ − origin, d2⟩/‖d2‖² (exact when d1 ⟂ d2).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from saddlescope.critical import CriticalPoint
from saddlescope.landscape import Plane

__all__ = ["KIND_STYLE", "plot_contour", "plot_surface", "save"]

KIND_STYLE: dict[str, tuple[str, str]] = {  # kind → (colour, marker)
    "minimum": ("tab:green", "o"),
    "saddle": ("tab:red", "X"),
    "maximum": ("tab:purple", "^"),
    "degenerate": ("tab:orange", "s"),
    "not-critical": ("tab:gray", "."),
}


def _coords(plane: Plane, theta: Tensor) -> tuple[float, float]:
    delta = theta.cpu().to(plane.origin) - plane.origin
    a = float(delta @ plane.d1) / float(plane.d1 @ plane.d1)
    b = float(delta @ plane.d2) / float(plane.d2 @ plane.d2)
    return a, b


def _mark_points(ax, plane: Plane, points: Sequence[CriticalPoint], z: bool = False) -> None:
    seen: set[str] = set()
    for p in points:
        colour, marker = KIND_STYLE[p.kind]
        a, b = _coords(plane, p.theta)
        label = p.kind if p.kind not in seen else None
        seen.add(p.kind)
        extra = (p.loss,) if z else ()
        ax.scatter(
            a,
            b,
            *extra,
            color=colour,
            marker=marker,
            s=60,
            label=label,
            zorder=5,
            edgecolors="black",
            linewidths=0.5,
        )


def plot_surface(
    plane: Plane,
    points: Sequence[CriticalPoint] = (),
    *,
    title: str = "",
    zmax: float | None = None,
    xlabel: str = "direction 1",
    ylabel: str = "direction 2",
) -> Figure:
    """3-D surface of the loss over ``plane``, with ``points`` marked at their loss.

    Parts of the surface above ``zmax`` are left out, so the low ground stays visible.
    """
    A, B = np.meshgrid(plane.alphas.numpy(), plane.betas.numpy())
    Z = plane.losses.numpy().copy()
    if zmax is not None:
        Z[zmax < Z] = np.nan
    fig = plt.figure(figsize=(7, 5.5))
    ax = fig.add_subplot(projection="3d")
    ax.plot_surface(A, B, Z, cmap="viridis", alpha=0.75, linewidth=0, antialiased=True)
    _mark_points(ax, plane, points, z=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_zlabel("loss")
    ax.set_title(title)
    if points:
        ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def plot_contour(
    plane: Plane,
    points: Sequence[CriticalPoint] = (),
    *,
    curves: Sequence[tuple[np.ndarray, np.ndarray, str]] = (),
    arrows: Sequence[tuple[CriticalPoint, float]] = (),
    title: str = "",
    levels: int = 30,
    xlabel: str = "direction 1",
    ylabel: str = "direction 2",
) -> Figure:
    """Contour map of the loss over ``plane``; ``arrows`` = (saddle, length) along its escape."""
    A, B = np.meshgrid(plane.alphas.numpy(), plane.betas.numpy())
    Z = plane.losses.numpy()
    fig, ax = plt.subplots(figsize=(6.5, 6))
    lv = np.quantile(Z, np.linspace(0, 0.9, levels))
    cs = ax.contourf(A, B, Z, levels=np.unique(lv), cmap="viridis")
    ax.contour(A, B, Z, levels=np.unique(lv), colors="white", linewidths=0.3)
    fig.colorbar(cs, ax=ax, label="loss")
    for xs, ys, label in curves:
        ax.plot(xs, ys, color="tab:green", lw=2, ls="--", label=label)
    _mark_points(ax, plane, points)
    for point, length in arrows:
        if point.escape_direction is None:
            continue
        a0, b0 = _coords(plane, point.theta)
        a1, b1 = _coords(plane, point.theta + length * point.escape_direction.cpu())
        for sign, style in ((1, "-"), (-1, "--")):
            ax.annotate(
                "",
                xy=(a0 + sign * (a1 - a0), b0 + sign * (b1 - b0)),
                xytext=(a0, b0),
                arrowprops={"arrowstyle": "-|>", "color": "tab:red", "lw": 2, "ls": style},
            )
        ax.plot([], [], color="tab:red", lw=2, label="escape ±u (most negative λ)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_aspect("equal")
    ax.set_xlim(A.min(), A.max())
    ax.set_ylim(B.min(), B.max())
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` (PNG at 150 dpi unless the suffix says otherwise) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------- the survey
_SIZE_MARKERS = ("o", "s", "^", "D", "v", "P", "*", "X", "<", ">")


def plot_loss_vs_ratio(
    records: Sequence, *, show_excluded: bool = False, title: str = ""
) -> Figure:
    """Loss at each critical point against its minimum ratio n₊/n (MISSION §6's figure).

    Colour by kind, marker by model size; the ratio-1 line (strict local minima) is drawn.
    Runs that did not converge or are gradient-flat are left out unless ``show_excluded``, and
    then drawn hollow in grey.
    """
    fig, ax = plt.subplots(figsize=(8.5, 5))
    sizes = sorted({r.num_params for r in records})
    marker = {n: _SIZE_MARKERS[i % len(_SIZE_MARKERS)] for i, n in enumerate(sizes)}
    for n in sizes:
        for kind, (colour, _) in KIND_STYLE.items():
            pts = [r for r in records if r.num_params == n and r.usable and r.kind == kind]
            if pts:
                ax.scatter(
                    [r.minimum_ratio for r in pts],
                    [r.loss_critical for r in pts],
                    color=colour,
                    marker=marker[n],
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
                    marker=marker[n],
                    s=40,
                )
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
    kinds = sorted({r.kind for r in records if r.usable})
    handles = [
        plt.Line2D([], [], color=KIND_STYLE[k][0], marker="o", ls="", label=k) for k in kinds
    ]
    handles += [
        plt.Line2D([], [], color="black", marker=marker[n], ls="", mfc="none", label=f"{n} params")
        for n in sizes
    ]
    if show_excluded:
        handles.append(
            plt.Line2D(
                [],
                [],
                color="tab:gray",
                marker="o",
                ls="",
                mfc="none",
                label="not converged / gradient-flat",
            )
        )
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("minimum ratio  n₊ / n  (fraction of positive Hessian eigenvalues)")
    ax.set_ylabel("training loss at the critical point")
    ax.set_xlim(-0.02, 1.05)
    used = sum(r.usable for r in records)
    ax.set_title(title or f"Critical points reached in training ({used} of {len(records)} runs)")
    fig.tight_layout()
    return fig


def plot_index_histogram(records: Sequence, *, bins: int = 20) -> Figure:
    """Histogram of the index n₋/n over converged runs, stacked by model size."""
    fig, ax = plt.subplots(figsize=(6, 4))
    sizes = sorted({r.num_params for r in records})
    data = [[r.index for r in records if r.usable and r.num_params == n] for n in sizes]
    ax.hist(
        data, bins=np.linspace(0, 1, bins + 1), stacked=True, label=[f"{n} params" for n in sizes]
    )
    ax.set_xlabel("index  n₋ / n")
    ax.set_ylabel("critical points")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_spectra(records: Sequence, *, max_points: int = 6) -> Figure:
    """Sorted eigenvalues of chosen critical points (symlog scale), one line each."""
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
