"""Interactive HTML (plotly) of the loss surface over a plane, for turning it by hand.

plotly is the optional ``html`` extra: :func:`plotly_available` says whether it is installed,
:func:`require_plotly` hands out its ``graph_objects`` or a clear error naming the extra.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from saddlescope.classify import CriticalPoint
from saddlescope.errors import InvalidInputError
from saddlescope.files import write_text
from saddlescope.landscape import Plane
from saddlescope.plots.common import KIND_STYLE
from saddlescope.plots.surface import ESCAPE_LABEL, escape_segment, plane_coords

__all__ = ["plotly_available", "require_plotly", "surface_html", "to_html"]


def plotly_available() -> bool:
    """Whether plotly (the optional ``html`` extra) can be imported.

    Returns:
        True when ``plotly.graph_objects`` imports.
    """
    try:
        import plotly.graph_objects  # noqa: F401
    except ImportError:
        return False
    return True


def require_plotly() -> Any:
    """Plotly's ``graph_objects`` module, for building interactive figures.

    Returns:
        The ``plotly.graph_objects`` module.

    Raises:
        InvalidInputError: when plotly is not installed; the message names the extra to install
            (``pip install 'saddlescope[html]'``).
    """
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise InvalidInputError(
            "interactive HTML needs plotly, which is not installed; "
            "pip install 'saddlescope[html]' (or pip install plotly)"
        ) from None
    return go


def _point_traces(go: Any, plane: Plane, points: Sequence[CriticalPoint]) -> list[Any]:
    """One marker per point at (a, b, loss), coloured by kind, each kind once in the legend."""
    from matplotlib.colors import to_hex

    traces, seen = [], set()
    for p in points:
        colour, _ = KIND_STYLE[p.kind]
        pa, pb = plane_coords(plane, p.theta)
        traces.append(
            go.Scatter3d(
                x=[pa],
                y=[pb],
                z=[p.loss],
                mode="markers",
                marker={"size": 6, "color": to_hex(colour), "line": {"color": "black", "width": 1}},
                name=p.kind,
                legendgroup=p.kind,
                showlegend=p.kind not in seen,
                hovertext=f"{p.kind}: loss {p.loss:.6g}, ‖g‖ {p.grad_norm:.2g}",
            )
        )
        seen.add(p.kind)
    return traces


def _escape_traces(
    go: Any, plane: Plane, arrows: Sequence[tuple[CriticalPoint, float]]
) -> list[Any]:
    """Lines ±length·escape_direction over the surface, heights interpolated from the grid."""
    from matplotlib.colors import to_hex
    from scipy.interpolate import RegularGridInterpolator

    a, b = plane.alphas.numpy(), plane.betas.numpy()
    if not arrows or len(a) < 2 or len(b) < 2:
        return []
    order_a, order_b = np.argsort(a), np.argsort(b)
    interp = RegularGridInterpolator(
        (b[order_b], a[order_a]),
        plane.losses.numpy()[np.ix_(order_b, order_a)],
        bounds_error=False,
        fill_value=np.nan,
    )
    traces = []
    for i, (point, length) in enumerate(arrows):
        if point.escape_direction is None:
            continue
        a0, b0, a1, b1 = escape_segment(plane, point, length)
        s = np.linspace(-1.0, 1.0, 41)
        xs, ys = a0 + s * (a1 - a0), b0 + s * (b1 - b0)
        traces.append(
            go.Scatter3d(
                x=xs,
                y=ys,
                z=interp(np.stack([ys, xs], axis=1)),
                mode="lines",
                line={"color": to_hex("tab:red"), "width": 6},
                name=ESCAPE_LABEL,
                showlegend=i == 0,
            )
        )
    return traces


def surface_figure(
    plane: Plane,
    points: Sequence[CriticalPoint] = (),
    *,
    arrows: Sequence[tuple[CriticalPoint, float]] = (),
    title: str = "",
    zmax: float | None = None,
    xlabel: str = "direction 1",
    ylabel: str = "direction 2",
) -> Any:
    """The plotly figure behind :func:`to_html`: the surface, the points and the escape lines.

    Args:
        plane: the loss on a grid over the plane (from ``slice_2d``).
        points: critical points to mark at (a, b, loss), coloured by kind.
        arrows: (point, length) pairs: ±length·escape_direction drawn over the surface.
        title: the figure's title.
        zmax: leave out the parts of the surface above this loss (None keeps all).
        xlabel: the label of the first direction's axis.
        ylabel: the label of the second direction's axis.

    Returns:
        A ``plotly.graph_objects.Figure``.

    Raises:
        InvalidInputError: when plotly is not installed.
    """
    go = require_plotly()
    Z = plane.losses.numpy().copy()
    if zmax is not None:
        Z[zmax < Z] = np.nan
    surface = go.Surface(
        x=plane.alphas.numpy(),
        y=plane.betas.numpy(),
        z=Z,
        colorscale="Viridis",
        opacity=0.85,
        colorbar={"title": "loss"},
    )
    fig = go.Figure(surface)
    for trace in _point_traces(go, plane, points) + _escape_traces(go, plane, arrows):
        fig.add_trace(trace)
    fig.update_layout(
        title=title,
        scene={"xaxis_title": xlabel, "yaxis_title": ylabel, "zaxis_title": "loss"},
        legend={"x": 0.0, "y": 1.0},
        margin={"l": 0, "r": 0, "b": 0, "t": 40},
    )
    return fig


def to_html(
    plane: Plane,
    points: Sequence[CriticalPoint] = (),
    *,
    arrows: Sequence[tuple[CriticalPoint, float]] = (),
    title: str = "",
    zmax: float | None = None,
    xlabel: str = "direction 1",
    ylabel: str = "direction 2",
    include_plotlyjs: bool | str = True,
) -> str:
    """A self-contained interactive HTML page (plotly) of the loss surface over ``plane``.

    Critical points sit at (a, b, loss), coloured by kind as in the PNGs. Needs the optional
    ``html`` extra (plotly).

    Args:
        plane: the loss on a grid over the plane (from ``slice_2d``).
        points: critical points to mark, coloured by kind.
        arrows: (saddle, length) pairs: ±length·escape_direction drawn over the surface, its
            heights interpolated from the plane's grid.
        title: the page's title.
        zmax: leave out the parts of the surface above this loss (None keeps all).
        xlabel: the label of the first direction's axis.
        ylabel: the label of the second direction's axis.
        include_plotlyjs: True embeds plotly.js (≈4 MB, works offline); "cdn" links it
            instead (see plotly's ``Figure.to_html``).

    Returns:
        The HTML page.

    Raises:
        InvalidInputError: when plotly is not installed.
    """
    fig = surface_figure(
        plane, points, arrows=arrows, title=title, zmax=zmax, xlabel=xlabel, ylabel=ylabel
    )
    return str(fig.to_html(full_html=True, include_plotlyjs=include_plotlyjs))


def surface_html(
    plane: Plane,
    points: Sequence[CriticalPoint],
    path: str | Path,
    *,
    arrows: Sequence[tuple[CriticalPoint, float]] = (),
    title: str = "",
    zmax: float | None = None,
    xlabel: str = "direction 1",
    ylabel: str = "direction 2",
    include_plotlyjs: bool | str = True,
) -> Path:
    """Write :func:`to_html`'s page to ``path`` (folders created).

    Args:
        plane: the loss on a grid over the plane (from ``slice_2d``).
        points: critical points to mark, coloured by kind.
        path: the HTML file to write.
        arrows: (saddle, length) pairs: ±length·escape_direction drawn over the surface.
        title: the page's title.
        zmax: leave out the parts of the surface above this loss (None keeps all).
        xlabel: the label of the first direction's axis.
        ylabel: the label of the second direction's axis.
        include_plotlyjs: True embeds plotly.js (works offline); "cdn" links it instead.

    Returns:
        The path written.

    Raises:
        InvalidInputError: when plotly is not installed (nothing is written).
    """
    page = to_html(
        plane,
        points,
        arrows=arrows,
        title=title,
        zmax=zmax,
        xlabel=xlabel,
        ylabel=ylabel,
        include_plotlyjs=include_plotlyjs,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, page)
