"""The figures of saddlescope.plots, module by module: what each draws and names in its legend."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from saddlescope import InvalidInputError, classify, plots, toy
from saddlescope.landscape import Line, eigen_directions, slice_2d
from saddlescope.plots import common, curves, interactive, study, surface

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def saddle_plane():
    obj = toy.worked_example_objective()
    theta = torch.zeros(2, dtype=torch.float64)
    cp = classify(obj, theta, loss_lower_bound=0.0)
    u, v = eigen_directions(obj, theta)
    return cp, slice_2d(obj, theta, u, v, 2.0, 9)


def _legend(fig):
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def _records():
    kinds = ("minimum", "saddle", "degenerate")
    return [
        SimpleNamespace(
            num_params=(10, 40)[i % 2],
            usable=i != 0,
            kind=kinds[i % 3],
            minimum_ratio=i / 8,
            index=1 - i / 8,
            loss_critical=0.01 * i,
            eigenvalues=np.linspace(-1.0, 2.0, (10, 40)[i % 2]),
            hidden=str(i),
            seed=i,
        )
        for i in range(8)
    ]


def test_package_keeps_every_name():
    for name in plots.__all__:
        assert callable(getattr(plots, name)) or name == "KIND_STYLE"
    assert plots.save is common.save and plots.KIND_STYLE is common.KIND_STYLE
    assert plots.plot_surface is surface.plot_surface and plots.plot_line is curves.plot_line
    assert plots.plot_spectra is study.plot_spectra and plots.to_html is interactive.to_html
    kinds = {"minimum", "saddle", "maximum", "degenerate", "on-kink", "not-critical"}
    assert set(plots.KIND_STYLE) == kinds


def test_save_writes_png_and_makes_folders(tmp_path):
    fig = plots.plot_index_histogram(_records())
    path = plots.save(fig, tmp_path / "a" / "b.png")
    assert path == tmp_path / "a" / "b.png" and path.read_bytes()[:8] == PNG


# ------------------------------------------------------------------------- surface
def test_plane_coords_and_escape_segment(saddle_plane):
    cp, plane = saddle_plane
    assert surface.plane_coords(plane, cp.theta) == pytest.approx((0.0, 0.0), abs=1e-12)
    a0, b0, a1, b1 = surface.escape_segment(plane, cp, 1.0)
    assert (a0, b0) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert float(np.hypot(a1, b1)) == pytest.approx(1.0)  # a unit step, in the plane of u₋, u₊
    flat = classify(toy.worked_example_objective(), torch.tensor([1.0, 1.0], dtype=torch.float64))
    assert flat.escape_direction is None
    with pytest.raises(InvalidInputError, match="no escape direction"):
        surface.escape_segment(plane, flat, 1.0)


def test_contour_and_surface_legends(saddle_plane, tmp_path):
    cp, plane = saddle_plane
    b = np.linspace(-1, 1, 5)
    fig = plots.plot_contour(
        plane, [cp, cp], curves=[(b, b, "valley"), (-b, b, "")], arrows=[(cp, 0.5)], title="t"
    )
    assert _legend(fig) == ["valley", "saddle", "escape ±u (most negative λ)"]
    assert fig.axes[0].get_title() == "t"
    assert plots.save(fig, tmp_path / "c.png").read_bytes()[:8] == PNG
    fig = plots.plot_surface(plane, [cp], zmax=1.0, xlabel="x", ylabel="y")
    assert _legend(fig) == ["saddle"]
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("x", "y")
    assert plots.plot_surface(plane).axes[0].get_legend() is None


# -------------------------------------------------------------------------- curves
def test_plot_line_slopes_in_model_label():
    t = torch.linspace(-1, 1, 11, dtype=torch.float64)
    ln = Line(torch.zeros(2), torch.tensor([1.0, 0.0]), t, 1 + t**2, origin_loss=1.0)
    fig = plots.plot_line([ln, ln], eigenvalues=[2.0, -1.0], slopes=[-0.5, None])
    assert _legend(fig) == [
        "direction 1",
        "L₀ − 0.5·t + ½λt²,  λ = 2",
        "direction 2",
        "L₀ + ½λt²,  λ = -1",
    ]
    with pytest.raises(InvalidInputError, match="1 slopes for 2 lines"):
        plots.plot_line([ln, ln], slopes=[0.0])
    with pytest.raises(InvalidInputError, match="at least one Line"):
        plots.plot_line([])


def test_plot_escape_paths_labels():
    step = SimpleNamespace
    runs = [
        SimpleNamespace(
            method=m,
            path=[step(step=s, loss=0.5**s) for s in range(20)],
            steps_to_target=k,
            reached=k is not None,
            target_loss=1e-3,
        )
        for m, k in (("gd", None), ("curvature", 12))
    ]
    fig = plots.plot_escape_paths(runs, title="esc")
    assert _legend(fig) == ["gd: not reached", "curvature: 12 steps", "target 0.001"]
    assert fig.axes[0].get_yscale() == "log" and fig.axes[0].get_title() == "esc"


# --------------------------------------------------------------------------- study
def test_loss_vs_ratio_legend_and_title():
    recs = _records()
    fig = plots.plot_loss_vs_ratio(recs)
    assert _legend(fig) == ["degenerate", "minimum", "saddle", "10 params", "40 params"]
    assert fig.axes[0].get_title() == "Critical points reached in training (7 of 8 runs)"
    fig = plots.plot_loss_vs_ratio(recs, show_excluded=True, title="mine")
    assert _legend(fig)[-1] == "not converged / gradient-flat"
    assert fig.axes[0].get_title() == "mine"


def test_index_histogram_and_spectra():
    recs = _records()
    fig = plots.plot_index_histogram(recs, bins=4)
    assert _legend(fig) == ["10 params", "40 params"]
    counts = sum(len(c.patches) for c in fig.axes[0].containers)
    assert counts == 2 * 4
    fig = plots.plot_spectra(recs, max_points=3)
    assert _legend(fig) == [
        "minimum, loss 0, [0] seed 0",
        "saddle, loss 0.01, [1] seed 1",
        "degenerate, loss 0.02, [2] seed 2",
    ]


# --------------------------------------------------------------------- interactive
def test_require_plotly_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    assert not plots.plotly_available()
    with pytest.raises(InvalidInputError, match=r"pip install 'saddlescope\[html\]'"):
        plots.require_plotly()


def test_surface_figure_traces(saddle_plane):
    pytest.importorskip("plotly")
    cp, plane = saddle_plane
    fig = plots.surface_figure(plane, [cp, cp], arrows=[(cp, 1.0), (cp, 0.5)], zmax=1.0)
    kinds = [t.type for t in fig.data]
    assert kinds == ["surface", "scatter3d", "scatter3d", "scatter3d", "scatter3d"]
    assert [t.showlegend for t in fig.data[1:]] == [True, False, True, False]
    assert np.isnan(np.asarray(fig.data[0].z, dtype=float)).any()  # clipped above zmax
    assert plots.require_plotly().Figure is type(fig)
