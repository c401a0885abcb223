"""The loss over a plane through θ, drawn as a 3-D surface or a contour map, critical points marked.

Critical points and arrows are placed by their coordinates in the plane's basis,
a = ⟨θ − origin, d1⟩/‖d1‖², b = ⟨θ − origin, d2⟩/‖d2‖² (exact when d1 ⟂ d2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from saddlescope.classify import CriticalPoint
from saddlescope.errors import InvalidInputError
from saddlescope.landscape import Plane
from saddlescope.plots.common import KIND_STYLE

__all__ = ["escape_segment", "mark_points", "plane_coords", "plot_contour", "plot_surface"]

ESCAPE_LABEL = "escape ±u (most negative λ)"


def plane_coords(plane: Plane, theta: Tensor) -> tuple[float, float]:
    """Coordinates (a, b) of θ in the plane's basis.

    a = ⟨θ − origin, d1⟩/‖d1‖², b = ⟨θ − origin, d2⟩/‖d2‖²: exact when θ lies in the plane and
    d1 ⟂ d2, otherwise the projection of θ onto each direction.

    Args:
        plane: the plane (its origin and directions d1, d2).
        theta: a flat parameter vector of the plane's size.

    Returns:
        The pair (a, b).
    """
    delta = theta.cpu().to(plane.origin) - plane.origin
    a = float(delta @ plane.d1) / float(plane.d1 @ plane.d1)
    b = float(delta @ plane.d2) / float(plane.d2 @ plane.d2)
    return a, b


def escape_segment(
    plane: Plane, point: CriticalPoint, length: float
) -> tuple[float, float, float, float]:
    """The plane coordinates of ``point`` and of ``point`` + length·escape_direction.

    Args:
        plane: the plane the segment is drawn in.
        point: a critical point with an ``escape_direction`` (not None).
        length: the step along the escape direction, in parameter space.

    Returns:
        (a0, b0, a1, b1): the start (the point) and the end of the step.

    Raises:
        InvalidInputError: when ``point`` has no escape direction.
    """
    if point.escape_direction is None:
        raise InvalidInputError(f"this {point.kind} has no escape direction to draw")
    a0, b0 = plane_coords(plane, point.theta)
    a1, b1 = plane_coords(plane, point.theta + length * point.escape_direction.cpu())
    return a0, b0, a1, b1


def mark_points(ax: Any, plane: Plane, points: Sequence[CriticalPoint], z: bool = False) -> None:
    """Scatter ``points`` on ``ax`` at their plane coordinates, coloured and shaped by kind.

    Each kind is labelled once (for the legend).

    Args:
        ax: a 2-D matplotlib axes, or a 3-D one when ``z``.
        plane: the plane whose coordinates place the points.
        points: the critical points to mark.
        z: also place each point at its loss on the third axis (for a 3-D surface).
    """
    seen: set[str] = set()
    for p in points:
        colour, marker = KIND_STYLE[p.kind]
        a, b = plane_coords(plane, p.theta)
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

    Args:
        plane: the loss on a grid over the plane (from ``slice_2d``).
        points: critical points to mark, coloured by kind.
        title: the figure's title.
        zmax: leave out the parts of the surface above this loss, so the low ground stays
            visible (None keeps all).
        xlabel: the label of the first direction's axis.
        ylabel: the label of the second direction's axis.

    Returns:
        The figure (write it with :func:`~saddlescope.plots.save`).
    """
    A, B = np.meshgrid(plane.alphas.numpy(), plane.betas.numpy())
    Z = plane.losses.numpy().copy()
    if zmax is not None:
        Z[zmax < Z] = np.nan
    fig = plt.figure(figsize=(7, 5.5))
    ax: Any = fig.add_subplot(projection="3d")
    ax.plot_surface(A, B, Z, cmap="viridis", alpha=0.75, linewidth=0, antialiased=True)
    mark_points(ax, plane, points, z=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_zlabel("loss")
    ax.set_title(title)
    if points:
        ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def _draw_escape_arrows(
    ax: Axes, plane: Plane, arrows: Sequence[tuple[CriticalPoint, float]]
) -> None:
    """Arrows ±length·escape_direction from each point that has one (solid +, dashed −)."""
    for point, length in arrows:
        if point.escape_direction is None:
            continue
        a0, b0, a1, b1 = escape_segment(plane, point, length)
        for sign, style in ((1, "-"), (-1, "--")):
            ax.annotate(
                "",
                xy=(a0 + sign * (a1 - a0), b0 + sign * (b1 - b0)),
                xytext=(a0, b0),
                arrowprops={"arrowstyle": "-|>", "color": "tab:red", "lw": 2, "ls": style},
            )
        ax.plot([], [], color="tab:red", lw=2, label=ESCAPE_LABEL)


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
    """Contour map of the loss over ``plane``, critical points marked by kind.

    Args:
        plane: the loss on a grid over the plane (from ``slice_2d``).
        points: critical points to mark, coloured and shaped by kind.
        curves: extra curves (a, b, label) in plane coordinates, drawn dashed (e.g. a known
            set of minima); an empty label keeps a curve out of the legend.
        arrows: (point, length) pairs: ±length·escape_direction drawn from each point that has
            an escape direction.
        title: the figure's title.
        levels: how many contour levels, at quantiles 0 to 0.9 of the loss over the grid.
        xlabel: the label of the first direction's axis.
        ylabel: the label of the second direction's axis.

    Returns:
        The figure (write it with :func:`~saddlescope.plots.save`).
    """
    A, B = np.meshgrid(plane.alphas.numpy(), plane.betas.numpy())
    Z = plane.losses.numpy()
    fig, ax = plt.subplots(figsize=(6.5, 6))
    lv = np.quantile(Z, np.linspace(0, 0.9, levels))
    cs = ax.contourf(A, B, Z, levels=np.unique(lv), cmap="viridis")
    ax.contour(A, B, Z, levels=np.unique(lv), colors="white", linewidths=0.3)
    fig.colorbar(cs, ax=ax, label="loss")
    for xs, ys, label in curves:
        ax.plot(xs, ys, color="tab:green", lw=2, ls="--", label=label)
    mark_points(ax, plane, points)
    _draw_escape_arrows(ax, plane, arrows)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_aspect("equal")
    ax.set_xlim(A.min(), A.max())
    ax.set_ylim(B.min(), B.max())
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    return fig
