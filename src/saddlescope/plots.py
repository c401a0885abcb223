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
