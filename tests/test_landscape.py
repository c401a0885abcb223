"""Slices of the loss along chosen directions, and the pictures drawn from them."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch
from torch import nn

from conftest import assert_unchanged, classification_data, make_cnn, make_mlp, snapshot
from saddlescope import InvalidInputError, Objective, Spectrum, hessian_spectrum, plots, toy
from saddlescope.landscape import (
    eigen_directions,
    eigen_pairs,
    line,
    orthogonalize,
    plane,
    random_direction,
    slice_1d,
    slice_2d,
)
from saddlescope.pictures import model_pictures, worked_example_pictures

F64 = torch.float64
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def mlp():
    model = make_mlp([4, 6, 5, 3], "tanh")
    return model, Objective(model, nn.CrossEntropyLoss(), classification_data(20, 4, 3), dtype=F64)


@pytest.fixture(scope="module")
def mlp_spectrum():
    model = make_mlp([4, 6, 5, 3], "tanh")
    obj = Objective(model, nn.CrossEntropyLoss(), classification_data(20, 4, 3), dtype=F64)
    return hessian_spectrum(obj, obj.theta0)  # dense, all 83 eigenpairs


@pytest.fixture
def worked():
    return toy.worked_example_objective(), torch.zeros(2, dtype=F64)


def _weights_and_biases(obj, vec):
    parts = obj.unflatten(vec)
    return (
        {n: p for n, p in parts.items() if p.ndim >= 2},
        {n: p for n, p in parts.items() if p.ndim <= 1},
    )


# ------------------------------------------------------------------------ filter normalisation
@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_filter_normalisation_matches_theta_row_norms(which, mlp):
    if which == "mlp":
        obj = mlp[1]
    else:
        data = (torch.randn(4, 1, 6, 6), torch.ones(4, dtype=torch.long))
        obj = Objective(make_cnn(), nn.CrossEntropyLoss(), data, dtype=F64)
    theta = obj.theta0
    d = random_direction(obj, theta, seed=3)
    w_d, b_d = _weights_and_biases(obj, d)
    w_t, b_t = _weights_and_biases(obj, theta)
    assert w_d, "the model has filters"
    for name, rows in w_d.items():
        got = torch.linalg.vector_norm(rows.reshape(rows.shape[0], -1), dim=1)
        want = torch.linalg.vector_norm(w_t[name].reshape(rows.shape[0], -1), dim=1)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
        assert not torch.allclose(rows, w_t[name])  # a new direction, not θ itself
    for name, b in b_d.items():  # biases (and BatchNorm's affine parameters) are zeroed
        assert torch.equal(b, torch.zeros_like(b)), name
    # ignore_biases=False: Li et al.'s code keeps 1-D parameters as θ's own values
    d_keep = random_direction(obj, theta, seed=3, ignore_biases=False)
    w_k, b_k = _weights_and_biases(obj, d_keep)
    for name, b in b_k.items():
        assert torch.equal(b, b_t[name])
    for name, rows in w_k.items():
        assert torch.equal(rows, w_d[name])


def test_random_direction_is_seeded_and_unit_without_filters(mlp):
    _, obj = mlp
    theta = obj.theta0
    a, b = random_direction(obj, theta, 7), random_direction(obj, theta, 7)
    assert torch.equal(a, b)
    assert not torch.equal(a, random_direction(obj, theta, 8))
    u = random_direction(obj, theta, 7, filter_normalized=False)
    assert math.isclose(float(torch.linalg.vector_norm(u)), 1.0, rel_tol=1e-12)
    assert u.dtype == obj.dtype and u.shape == theta.shape
    with pytest.raises(InvalidInputError, match="seed must be a non-negative integer"):
        random_direction(obj, theta, -1)


def test_filter_normalisation_without_filters_says_what_to_do(worked):
    obj, theta = worked  # two scalar parameters: no filters
    with pytest.raises(InvalidInputError, match="ignore_biases=False or filter_normalized=False"):
        random_direction(obj, theta, 0)
    theta = torch.tensor([0.5, -2.0], dtype=F64)
    assert torch.equal(random_direction(obj, theta, 0, ignore_biases=False), theta)


# ------------------------------------------------------------------------ orthogonalisation
def test_orthogonalize():
    g = torch.Generator().manual_seed(0)
    d1, d2 = torch.randn(50, generator=g, dtype=F64), torch.randn(50, generator=g, dtype=F64)
    e1, e2 = orthogonalize(d1, d2)
    assert torch.equal(e1, d1)
    assert abs(float(e1 @ e2)) < 1e-12 * float(d1.norm() * d2.norm())
    assert math.isclose(float(e2.norm()), float(d2.norm()), rel_tol=1e-12)
    with pytest.raises(InvalidInputError, match="parallel"):
        orthogonalize(d1, -3 * d1)
    with pytest.raises(InvalidInputError, match="non-zero"):
        orthogonalize(d1, torch.zeros(50, dtype=F64))
    with pytest.raises(InvalidInputError, match="same length"):
        orthogonalize(d1, d2[:10])


# ------------------------------------------------------------------------ eigen-direction slices
def test_worked_example_slices_along_eigenvectors_are_exact(worked):
    obj, theta = worked
    neg, pos = eigen_pairs(obj, theta)
    s = 1 / math.sqrt(2)
    assert (neg.which, pos.which) == ("most-negative", "most-positive")
    assert neg.eigenvalue == pytest.approx(-2.0, abs=1e-12)
    assert pos.eigenvalue == pytest.approx(2.0, abs=1e-12)
    torch.testing.assert_close(neg.vector, torch.tensor([s, s], dtype=F64))
    torch.testing.assert_close(pos.vector, torch.tensor([s, -s], dtype=F64))
    ln = slice_1d(obj, theta, neg.vector, span=2.0, num=41)
    t = ln.alphas
    torch.testing.assert_close(ln.losses, 1 - t**2 + t**4 / 4, rtol=0, atol=1e-12)
    up = slice_1d(obj, theta, pos.vector, span=2.0, num=41)
    torch.testing.assert_close(up.losses, 1 + t**2 + t**4 / 4, rtol=0, atol=1e-12)
    assert ln.origin_loss == 1.0
    # the quadratic model ½λt² is the slice up to t⁴/4
    small = slice_1d(obj, theta, neg.vector, span=1e-2, num=11)
    model = 1 + 0.5 * neg.eigenvalue * small.alphas**2
    assert float((small.losses - model).abs().max()) <= 0.25 * 1e-8 + 1e-15
    # the plane of both eigenvectors is the (w1, w2) plane turned by 45°
    pl = slice_2d(obj, theta, neg.vector, pos.vector, span=1.5, num=(7, 5))
    A, B = torch.meshgrid(pl.betas, pl.alphas, indexing="ij")[::-1]
    torch.testing.assert_close(pl.losses, (1 - (A**2 - B**2) / 2) ** 2, rtol=0, atol=1e-12)
    assert pl.losses.shape == (5, 7)


def test_eigen_directions_on_a_network(mlp, mlp_spectrum):
    _, obj = mlp
    theta = obj.theta0
    full = mlp_spectrum
    u_neg, u_pos = eigen_directions(obj, theta)  # k = 1 by Lanczos at both ends
    reused = eigen_pairs(obj, theta, spectrum=full)
    for u, p, lam in zip((u_neg, u_pos), reused, (full.min, full.max)):
        assert math.isclose(float(u.norm()), 1.0, rel_tol=1e-12)
        torch.testing.assert_close(obj.hvp(theta, u), lam * u, rtol=0, atol=1e-7)
        torch.testing.assert_close(u, p.vector, rtol=0, atol=1e-6)  # same sign convention
        assert p.eigenvalue == lam
    (only,) = eigen_directions(obj, theta, "most-positive", spectrum=full)
    assert torch.equal(only, reused[1].vector)
    # along u the loss is L + t·gᵀu + ½λt² + O(t³)
    g, L0 = obj.grad(theta), float(obj.loss(theta))
    ln = slice_1d(obj, theta, u_neg, span=1e-3, num=5)
    model = L0 + ln.alphas * float(g @ u_neg) + 0.5 * full.min * ln.alphas**2
    assert float((ln.losses - model).abs().max()) < 1e-8


def test_eigen_direction_errors(mlp, mlp_spectrum, worked):
    _, obj = mlp
    theta = obj.theta0
    with pytest.raises(InvalidInputError, match="unknown which 'smallest'"):
        eigen_directions(obj, theta, which="smallest")
    no_vectors = Spectrum(mlp_spectrum.eigenvalues, None, 83, "dense", 0, 1e-6, 0.0)
    with pytest.raises(InvalidInputError, match="no eigenvectors"):
        eigen_directions(obj, theta, spectrum=no_vectors)
    other = hessian_spectrum(*worked)
    with pytest.raises(InvalidInputError, match=r"2 parameters.*this objective has 83"):
        eigen_directions(obj, theta, spectrum=other)


# ------------------------------------------------------------------------ purity and errors
def test_pure_and_repeatable(mlp):
    model, obj = mlp
    before = snapshot(model)
    theta = obj.theta0
    theta_copy = theta.clone()

    def run():
        u_neg, u_pos = eigen_directions(obj, theta)
        r1, r2 = orthogonalize(random_direction(obj, theta, 0), random_direction(obj, theta, 1))
        return (
            slice_1d(obj, theta, u_neg, 0.5, 9).losses,
            slice_2d(obj, theta, u_neg, u_pos, 0.5, 5).losses,
            slice_2d(obj, theta, r1, r2, (0.5, 1.0), (5, 3)).losses,
        )

    first, second = run(), run()
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    assert torch.equal(theta, theta_copy)
    assert torch.equal(obj.theta0, theta_copy)
    assert_unchanged(model, before)


def test_bad_input_is_named(mlp):
    _, obj = mlp
    theta, d = obj.theta0, torch.ones(obj.num_params, dtype=F64)
    with pytest.raises(InvalidInputError, match=r"direction must be a 1-D vector of length 83"):
        slice_1d(obj, theta, torch.ones(5), 1.0, 5)
    with pytest.raises(InvalidInputError, match="direction is the zero vector"):
        slice_1d(obj, theta, torch.zeros_like(d), 1.0, 5)
    with pytest.raises(InvalidInputError, match="NaN or Inf"):
        slice_1d(obj, theta, d * math.nan, 1.0, 5)
    for span in (0.0, -1.0, math.inf):
        with pytest.raises(InvalidInputError, match="span must be a finite number > 0"):
            slice_1d(obj, theta, d, span, 5)
    for num in (1, 0, 2.5, True):
        with pytest.raises(InvalidInputError, match="num must be an integer ≥ 2"):
            slice_1d(obj, theta, d, 1.0, num)
    with pytest.raises(InvalidInputError, match="d2 is the zero vector"):
        slice_2d(obj, theta, d, torch.zeros_like(d))
    with pytest.raises(InvalidInputError, match="parallel"):
        slice_2d(obj, theta, d, -2 * d)
    with pytest.raises(InvalidInputError, match="span must be one value or a pair"):
        slice_2d(obj, theta, d, random_direction(obj, theta), span=(1.0, 2.0, 3.0))
    with pytest.raises(InvalidInputError, match="θ must be a 1-D vector of length 83"):
        random_direction(obj, theta[:3])


def test_line_keeps_the_loss_at_theta(mlp):
    _, obj = mlp
    theta = obj.theta0
    ln = line(obj, theta, torch.ones_like(theta), [0.5, 1.0])
    assert ln.origin_loss == pytest.approx(float(obj.loss(theta)), rel=1e-14)
    assert ln.to_dict()["origin_loss"] == ln.origin_loss
    assert ln.losses.shape == (2,)


# ------------------------------------------------------------------------ pictures
def test_plot_line_and_eigenvalues(mlp, mlp_spectrum, tmp_path):
    _, obj = mlp
    theta, full = obj.theta0, mlp_spectrum
    (neg, pos) = eigen_pairs(obj, theta, spectrum=full)
    r = random_direction(obj, theta, 0)
    lines = [slice_1d(obj, theta, d, 1.0, 11) for d in (neg.vector, pos.vector, r)]
    fig = plots.plot_line(
        lines, labels=["u-", "u+", "random"], eigenvalues=[neg.eigenvalue, pos.eigenvalue, None]
    )
    assert plots.save(fig, tmp_path / "lines.png").read_bytes()[:8] == PNG
    assert plots.save(plots.plot_line(lines[0], eigenvalues=-1.0), tmp_path / "one.png").exists()
    with pytest.raises(InvalidInputError, match="2 labels for 3 lines"):
        plots.plot_line(lines, labels=["a", "b"])
    with pytest.raises(InvalidInputError, match="1 eigenvalues for 3 lines"):
        plots.plot_line(lines, eigenvalues=[1.0])
    ends = torch.tensor([0, 1, 2, 80, 81, 82])  # as a Lanczos run would hold them
    lanczos = Spectrum(full.eigenvalues[ends], None, 83, "lanczos", 0, full.rtol, full.atol)
    for name, spec, scale in (("full", full, "auto"), ("few", lanczos, "linear")):
        fig = plots.plot_eigenvalues(spec, yscale=scale)
        labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        lam, tol = spec.eigenvalues, spec.threshold
        n_neg, n_pos = int((lam < -tol).sum()), int((lam > tol).sum())
        assert f"n₋ = {n_neg}" in labels and f"n₊ = {n_pos}" in labels
        if spec.complete:
            assert (n_neg, n_pos) == (spec.inertia.n_neg, spec.inertia.n_pos)
        assert any(lab.startswith("|λ| ≤ tol") for lab in labels)
        assert plots.save(fig, tmp_path / f"{name}.png").read_bytes()[:8] == PNG
    with pytest.raises(InvalidInputError, match="unknown yscale"):
        plots.plot_eigenvalues(full, yscale="log")


def test_html_needs_plotly(monkeypatch, worked, tmp_path):
    obj, theta = worked
    u, v = eigen_directions(obj, theta)
    pl = slice_2d(obj, theta, u, v, 1.0, 5)
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    assert not plots.plotly_available()
    with pytest.raises(InvalidInputError, match=r"pip install 'saddlescope\[html\]'"):
        plots.surface_html(pl, [], tmp_path / "s.html")
    with pytest.raises(InvalidInputError, match=r"saddlescope\[html\]"):
        model_pictures(obj, theta, tmp_path, html=True)
    assert not list(tmp_path.iterdir())  # refused before writing anything


def test_surface_html(worked, tmp_path):
    pytest.importorskip("plotly")
    from saddlescope import classify

    obj, theta = worked
    cp = classify(obj, theta)
    u, v = eigen_directions(obj, theta)
    pl = slice_2d(obj, theta, u, v, 2.0, 9)
    path = plots.surface_html(
        pl, [cp], tmp_path / "sub" / "s.html", arrows=[(cp, 1.0)], include_plotlyjs="cdn"
    )
    page = path.read_text()
    assert "<html>" in page and '"type":"surface"' in page.replace(" ", "")
    assert "saddle" in page and "escape" in page


def test_worked_example_pictures(tmp_path):
    paths = worked_example_pictures(tmp_path, num=15)
    names = {p.name for p in paths}
    assert {
        "worked_example_surface.png",
        "worked_example_contour.png",
        "worked_example_lines.png",
        "worked_example_eigenvalues.png",
        "worked_example_random_contour.png",
    } <= names
    assert ("worked_example_surface.html" in names) == plots.plotly_available()
    for p in paths:
        assert p.parent == tmp_path and p.stat().st_size > 1000
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == PNG


def test_model_pictures_leave_the_model_alone(mlp, tmp_path):
    model, obj = mlp
    before = snapshot(model)
    theta = obj.theta0
    paths = model_pictures(obj, theta, tmp_path, seed=2, span=0.5, num=9, html=False, prefix="m_")
    assert [p.name for p in paths] == [
        "m_surface.png",
        "m_contour.png",
        "m_lines.png",
        "m_eigenvalues.png",
        "m_random_contour.png",
    ]
    assert torch.equal(theta, obj.theta0)
    assert_unchanged(model, before)
    with pytest.raises(InvalidInputError, match="span must be a finite number > 0"):
        model_pictures(obj, theta, tmp_path, span=0.0)


def test_cli_landscape(tmp_path):
    from click.testing import CliRunner

    from saddlescope.cli import cli

    res = CliRunner().invoke(cli, ["landscape", "--out", str(tmp_path), "--no-html"])
    assert res.exit_code == 0, res.output
    assert len(list(tmp_path.glob("*.png"))) >= 4


def test_line_plane_eigen_direction_to_dict_and_str(worked):
    obj, theta = worked
    neg, _ = eigen_pairs(obj, theta)
    d = json.loads(json.dumps(neg.to_dict()))
    assert d["which"] == "most-negative" and d["eigenvalue"] == neg.eigenvalue
    assert len(d["vector"]) == 2
    text = str(neg)
    assert "most-negative" in text and "λ = -2" in text and "2 params" in text
    ln = slice_1d(obj, theta, neg.vector, span=2.0, num=41)  # loss 1 − t² + t⁴/4: 0 … 1
    assert json.loads(json.dumps(ln.to_dict()))["origin_loss"] == 1.0
    text = str(ln)
    assert "\n" not in text and "41 points" in text and "2 params" in text
    assert "[-2, 2]" in text and "max 1," in text and "L(origin) 1" in text
    assert f"min {float(ln.losses.min()):.6g}" in text
    e1, e2 = torch.eye(2, dtype=F64)
    pl = plane(obj, theta, e1, e2, [-1.0, 0.0, 1.0], [0.0, 2.0])  # (1 − ab)²: 0 … 9
    d = json.loads(json.dumps(pl.to_dict()))
    assert len(d["losses"]) == 2 and len(d["losses"][0]) == 3
    text = str(pl)
    assert "\n" not in text and "3×2 grid" in text and "2 params" in text
    assert "a ∈ [-1, 1]" in text and "b ∈ [0, 2]" in text and "loss min 1, max 9" in text
