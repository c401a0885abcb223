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

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from torch import Tensor

from saddlescope.classify import CriticalPoint
from saddlescope.errors import InvalidInputError
from saddlescope.landscape import Line, Plane
from saddlescope.spectrum import Spectrum

__all__ = [
    "KIND_STYLE",
    "plot_contour",
    "plot_eigenvalues",
    "plot_escape_paths",
    "plot_index_histogram",
    "plot_line",
    "plot_loss_vs_ratio",
    "plot_spectra",
    "plot_surface",
    "plotly_available",
    "save",
    "surface_html",
    "to_html",
]

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
    shown = [r.loss_critical for r in records if r.usable or show_excluded]
    ax.set_ylim(-1e-4, 2 * max(shown, default=1.0) or 1.0)
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


# ------------------------------------------------------------ landscape slices and spectra
# (appended section: 1-D curves, the eigenvalue spectrum, interactive HTML surfaces)


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
    ``eigenvalues`` gives one λ (or None) per line, ``slopes`` one s (or None for 0) per line;
    L(θ) is the line's ``origin_loss``.
    """
    lines = [lines] if isinstance(lines, Line) else list(lines)
    if not lines:
        raise InvalidInputError("plot_line needs at least one Line (from slice_1d or line)")
    if labels is not None and len(labels) != len(lines):
        raise InvalidInputError(f"got {len(labels)} labels for {len(lines)} lines; give one each")
    if eigenvalues is None or isinstance(eigenvalues, (int, float)):
        lams: list[float | None] = [eigenvalues] * len(lines)  # type: ignore[list-item]
    else:
        lams = list(eigenvalues)
        if len(lams) != len(lines):
            raise InvalidInputError(
                f"got {len(lams)} eigenvalues for {len(lines)} lines; give one (or None) each"
            )
    slope_list = [None] * len(lines) if slopes is None else list(slopes)
    if len(slope_list) != len(lines):
        raise InvalidInputError(
            f"got {len(slope_list)} slopes for {len(lines)} lines; give one (or None) each"
        )
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (ln, lam, slope) in enumerate(zip(lines, lams, slope_list)):
        colour = colours[i % len(colours)]
        t, loss = ln.alphas.numpy(), ln.losses.numpy()
        label = labels[i] if labels is not None else f"direction {i + 1}"
        ax.plot(t, loss, color=colour, lw=2, label=label)
        if lam is not None:
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
                label=(f"L₀ {'+−'[s < 0]} {abs(s):.2g}·t + ½λt²" if s else "L₀ + ½λt²")
                + f",  λ = {lam:.4g}",
            )
    allv = np.concatenate([ln.losses.numpy() for ln in lines])
    lo, hi = float(allv.min()), float(allv.max())
    pad = 0.08 * (hi - lo if hi > lo else max(abs(hi), 1.0))
    ax.set_ylim(lo - pad, hi + pad)  # the quadratic models may leave the frame; the data may not
    ax.axvline(0.0, color="black", lw=0.6, ls=":")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_eigenvalues(spectrum: Spectrum, *, title: str = "", yscale: str = "auto") -> Figure:
    """Sorted Hessian eigenvalues by rank, coloured by sign, with the zero band |λ| ≤ tol shaded.

    The legend holds the counts n₋, n₀, n₊ at the spectrum's tolerance (over the held eigenvalues:
    for a Lanczos spectrum only the extremes). ``yscale``: "linear", "symlog", or "auto" (symlog
    with the zero band as its linear part when the |λ| outside the band span over 3 decades).
    """
    if yscale not in ("auto", "linear", "symlog"):
        raise InvalidInputError(f"unknown yscale {yscale!r}; choose 'auto', 'linear' or 'symlog'")
    lam = np.sort(spectrum.eigenvalues.numpy())
    if lam.size == 0:
        raise InvalidInputError("the spectrum holds no eigenvalues to plot")
    tol = spectrum.threshold
    rank = np.arange(1, lam.size + 1)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    biggest = float(np.abs(lam).max())
    ax.axhspan(-tol, tol, color="tab:gray", alpha=0.25, lw=0, label=f"|λ| ≤ tol = {tol:.3g}")
    ax.axhline(0.0, color="black", lw=0.6)
    ax.plot(rank, lam, color="black", lw=0.6, alpha=0.6)
    size = 30 if lam.size <= 60 else 8
    for mask, colour, name in (
        (lam < -tol, "tab:red", "n₋"),
        (np.abs(lam) <= tol, "tab:gray", "n₀"),
        (lam > tol, "tab:blue", "n₊"),
    ):
        label = f"{name} = {int(mask.sum())}"  # of the eigenvalues held
        ax.scatter(rank[mask], lam[mask], color=colour, s=size, zorder=3, label=label)
    outside = np.abs(lam)[np.abs(lam) > tol]
    wide = outside.size > 0 and float(outside.max()) > 1e3 * float(outside.min())
    if yscale == "symlog" or (yscale == "auto" and wide):
        linthresh = tol if tol > 0 else max(biggest * 1e-6, 1e-12)
        ax.set_yscale("symlog", linthresh=linthresh)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    held = "all" if spectrum.complete else f"{lam.size} extreme"
    ax.set_xlabel(f"rank ({held} of n = {spectrum.num_params}, {spectrum.method})")
    ax.set_ylabel("Hessian eigenvalue λ")
    if not title and spectrum.inertia is not None:
        title = (
            f"Hessian spectrum: index n₋/n = {spectrum.inertia.index:.3g}, "
            f"minimum ratio n₊/n = {spectrum.inertia.minimum_ratio:.3g}"
        )
    ax.set_title(title or "Hessian spectrum (extreme eigenvalues)")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plotly_available() -> bool:
    """True when plotly (the optional ``html`` extra) can be imported."""
    try:
        import plotly.graph_objects  # noqa: F401
    except ImportError:
        return False
    return True


def _plotly_go():
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise InvalidInputError(
            "interactive HTML needs plotly, which is not installed; "
            "pip install 'saddlescope[html]' (or pip install plotly)"
        ) from None
    return go


def _surface_plotly(
    plane: Plane,
    points: Sequence[CriticalPoint],
    arrows: Sequence[tuple[CriticalPoint, float]],
    title: str,
    zmax: float | None,
    xlabel: str,
    ylabel: str,
):
    from matplotlib.colors import to_hex
    from scipy.interpolate import RegularGridInterpolator

    go = _plotly_go()
    a, b = plane.alphas.numpy(), plane.betas.numpy()
    Z = plane.losses.numpy().copy()
    if zmax is not None:
        Z[zmax < Z] = np.nan
    fig = go.Figure(
        go.Surface(x=a, y=b, z=Z, colorscale="Viridis", opacity=0.85, colorbar={"title": "loss"})
    )
    seen: set[str] = set()
    for p in points:
        colour, _ = KIND_STYLE[p.kind]
        pa, pb = _coords(plane, p.theta)
        fig.add_trace(
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
    if arrows and len(a) > 1 and len(b) > 1:
        order_a, order_b = np.argsort(a), np.argsort(b)
        interp = RegularGridInterpolator(
            (b[order_b], a[order_a]),
            plane.losses.numpy()[np.ix_(order_b, order_a)],
            bounds_error=False,
            fill_value=np.nan,
        )
        for i, (point, length) in enumerate(arrows):
            if point.escape_direction is None:
                continue
            a0, b0 = _coords(plane, point.theta)
            a1, b1 = _coords(plane, point.theta + length * point.escape_direction.cpu())
            s = np.linspace(-1.0, 1.0, 41)
            xs, ys = a0 + s * (a1 - a0), b0 + s * (b1 - b0)
            zs = interp(np.stack([ys, xs], axis=1))
            fig.add_trace(
                go.Scatter3d(
                    x=xs,
                    y=ys,
                    z=zs,
                    mode="lines",
                    line={"color": to_hex("tab:red"), "width": 6},
                    name="escape ±u (most negative λ)",
                    showlegend=i == 0,
                )
            )
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

    Critical points sit at (a, b, loss), coloured by kind as in the PNGs; ``arrows`` =
    (saddle, length) draws ±length·escape_direction over the surface (heights interpolated from
    the plane's grid). ``include_plotlyjs=True`` embeds plotly.js (≈4 MB, works offline);
    ``"cdn"`` links it instead. Needs the optional ``html`` extra (plotly).
    """
    fig = _surface_plotly(plane, points, arrows, title, zmax, xlabel, ylabel)
    return fig.to_html(full_html=True, include_plotlyjs=include_plotlyjs)


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
    """Write :func:`to_html`'s page to ``path`` (folders created) and return the path."""
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
    path.write_text(page, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------- escapes
def plot_escape_paths(results: Sequence, *, title: str = "") -> Figure:
    """Loss against step for each escape method from one start (log scale above the target)."""
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
