"""Leaving saddles: the negative-curvature step against GD, perturbed GD and saddle-free Newton."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import assert_unchanged, classification_data, make_mlp, snapshot
from saddlescope import (
    CurvatureOptions,
    GDOptions,
    InvalidInputError,
    Objective,
    PerturbedGDOptions,
    SaddleFreeNewtonOptions,
    Spectrum,
    classify,
    compare_escapes,
    curvature_step,
    escape_saddle,
    hessian_spectrum,
    negative_curvature_direction,
    spectrum_from_matrix,
    toy,
)
from saddlescope.escape import ESCAPE_METHODS

F64 = torch.float64
METHODS = ("curvature", "perturbed-gd", "saddle-free-newton", "gd")


@pytest.fixture(scope="module")
def obj():
    return toy.worked_example_objective()


@pytest.mark.parametrize("start", [(1e-6, 0.0), (1e-6, 1e-6), (0.0, -1e-6)])
def test_curvature_step_reaches_the_minima_first(obj, start):
    theta = torch.tensor(start, dtype=F64)
    runs = {m: escape_saddle(obj, theta, method=m, target_loss=1e-8) for m in METHODS}
    for m, r in runs.items():
        assert r.reached, f"{m}: {r}"
        w1, w2 = r.theta.tolist()
        assert abs(w1 * w2 - 1) < 1e-3  # ended next to the hyperbola of minima
    best = runs["curvature"].steps_to_target
    assert best <= 6
    assert all(best < runs[m].steps_to_target for m in ("perturbed-gd", "saddle-free-newton", "gd"))
    assert runs["curvature"].path[1].action == "curvature"


def test_on_the_stable_manifold_only_curvature_and_noise_escape(obj):
    theta = torch.tensor([7e-7, -7e-7], dtype=F64)  # g points straight back to the saddle
    for m in ("gd", "saddle-free-newton"):
        assert not escape_saddle(obj, theta, method=m, target_loss=1e-8, max_steps=200).reached
    for m in ("curvature", "perturbed-gd"):
        assert escape_saddle(obj, theta, method=m, target_loss=1e-8, max_steps=200).reached


def test_curvature_step_line_search(obj):
    cp = classify(obj, torch.zeros(2, dtype=F64))
    new, loss, evals = curvature_step(obj, cp.theta, cp.escape_direction, cp.escape_curvature, 1.0)
    assert loss < 1.0 and evals >= 2
    assert loss == pytest.approx(float(obj.loss(new)))
    # Along an ascent direction no step passes: θ is returned unchanged.
    up = torch.tensor([1.0, -1.0], dtype=F64) / 2**0.5
    same, loss2, _ = curvature_step(obj, cp.theta, up, -2.0, 1.0)
    assert torch.equal(same, cp.theta) and loss2 == 1.0


def test_decrease_target_and_path_bookkeeping(obj):
    r = escape_saddle(obj, torch.tensor([1e-6, 0.0], dtype=F64), decrease=0.5)
    assert r.target_loss == pytest.approx(0.5, abs=1e-9) and r.reached
    steps = [s.step for s in r.path]
    assert steps == list(range(len(steps)))
    assert all(a.hvps <= b.hvps and a.seconds <= b.seconds for a, b in zip(r.path, r.path[1:]))
    assert r.to_dict()["reached"] is True and "reached loss" in str(r)


def test_saddle_free_newton_in_a_lanczos_subspace():
    model = make_mlp([3, 6, 2], "tanh", seed=0)
    x, y = classification_data(30, 3, 2)
    big = Objective(model, nn.CrossEntropyLoss(), (x, y), dtype=F64, memory_budget=1000)
    theta = big.theta0
    r = escape_saddle(big, theta, method="saddle-free-newton", max_steps=5, options={"k": 3})
    assert r.loss < r.path[0].loss and r.hvps > 0


def test_escape_leaves_the_model_alone():
    model = make_mlp([3, 4, 2], "tanh", seed=1)
    before = snapshot(model)
    x, y = classification_data(10, 3, 2)
    obj = Objective(model, nn.CrossEntropyLoss(), (x, y), dtype=F64)
    for m in METHODS:
        escape_saddle(obj, obj.theta0, method=m, max_steps=3)
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"method": "adam"}, "unknown method"),
        ({"target_loss": 0.1, "decrease": 0.1}, "not both"),
        ({"lr": -1.0}, "lr"),
        ({"max_steps": -1}, "max_steps"),
        ({"decrease": 0.0}, "decrease"),
        ({"max_steps": True}, "max_steps"),
        ({"method": None}, "unknown method"),
    ],
)
def test_bad_options(obj, kwargs, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        escape_saddle(obj, torch.zeros(2, dtype=F64), **kwargs)


# ------------------------------------------------------------------------ the method table
def test_the_table_names_every_method_once():
    assert ESCAPE_METHODS == METHODS


def test_unknown_method_names_the_choices(obj):
    with pytest.raises(InvalidInputError, match=r"unknown method 'newton'.*'curvature'.*'gd'"):
        escape_saddle(obj, torch.zeros(2, dtype=F64), method="newton")


@pytest.mark.parametrize(
    ("method", "options", "pattern"),
    [
        ("curvature", {"radius": 0.1}, "method 'curvature' has no option 'radius'"),
        ("curvature", {"k": 3}, "has no option 'k'; its options: stall_grad_norm"),
        ("gd", {"stall_grad_norm": 1e-3}, "method 'gd' has no option 'stall_grad_norm'"),
        ("saddle-free-newton", {"wait": 2}, "no option 'wait'; its options: damping, k"),
        ("perturbed-gd", {"damping": 1e-3}, "method 'perturbed-gd' has no option 'damping'"),
        ("curvature", PerturbedGDOptions(), "takes CurvatureOptions .* not PerturbedGDOptions"),
        ("gd", CurvatureOptions(), "takes GDOptions"),
        ("curvature", "radius=0.1", "options must be a dict or CurvatureOptions"),
        ("perturbed-gd", {"wait": 0}, "wait"),
        ("perturbed-gd", {"wait": True}, "wait"),
        ("perturbed-gd", {"radius": -1.0}, "radius"),
        ("curvature", {"stall_grad_norm": 0.0}, "stall_grad_norm"),
        ("saddle-free-newton", {"damping": 0.0}, "damping"),
        ("saddle-free-newton", {"k": 0}, "k must be"),
    ],
)
def test_options_belong_to_their_method(obj, method, options, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        escape_saddle(obj, torch.tensor([1e-6, 0.0], dtype=F64), method=method, options=options)


def test_options_as_dict_or_dataclass_give_the_same_path(obj):
    theta = torch.tensor([7e-7, -7e-7], dtype=F64)
    a = escape_saddle(
        obj, theta, method="perturbed-gd", options={"radius": 0.1, "wait": 3}, max_steps=20
    )
    b = escape_saddle(
        obj,
        theta,
        method="perturbed-gd",
        options=PerturbedGDOptions(radius=0.1, wait=3),
        max_steps=20,
    )
    assert [s.loss for s in a.path] == [s.loss for s in b.path]
    assert torch.equal(a.theta, b.theta)
    assert "perturb" in [s.action for s in a.path]
    # The options matter: a larger radius leaves sooner than the default one.
    c = escape_saddle(obj, theta, method="perturbed-gd", max_steps=20)
    assert [s.loss for s in c.path] != [s.loss for s in a.path]


def test_stall_grad_norm_decides_when_curvature_acts(obj):
    theta = torch.tensor([1e-3, 0.0], dtype=F64)  # ‖g‖ ≈ 2e-3
    acts = escape_saddle(obj, theta, options={"stall_grad_norm": 1e-2}, max_steps=1)
    waits = escape_saddle(obj, theta, options={"stall_grad_norm": 1e-4}, max_steps=1)
    assert acts.path[1].action == "curvature" and waits.path[1].action == "gradient"


def test_options_defaults_and_dicts():
    assert CurvatureOptions().stall_grad_norm == PerturbedGDOptions().stall_grad_norm == 1e-3
    assert SaddleFreeNewtonOptions(k=3).to_dict() == {"damping": 1e-3, "k": 3}
    assert GDOptions().to_dict() == {} and str(GDOptions()) == "no options"
    assert "radius=0.1" in str(PerturbedGDOptions(radius=0.1))


def test_compare_escapes_passes_each_method_its_own_options(obj):
    theta = torch.tensor([7e-7, -7e-7], dtype=F64)
    both = compare_escapes(
        obj,
        theta,
        methods=("perturbed-gd", "gd"),
        options={"perturbed-gd": {"radius": 0.1, "wait": 3}},
        max_steps=20,
    )
    alone = escape_saddle(
        obj, theta, method="perturbed-gd", options={"radius": 0.1, "wait": 3}, max_steps=20
    )
    assert [r.method for r in both] == ["perturbed-gd", "gd"]
    assert [s.loss for s in both[0].path] == [s.loss for s in alone.path]
    with pytest.raises(InvalidInputError, match="'curvature', which is not among the methods"):
        compare_escapes(obj, theta, methods=("gd",), options={"curvature": {}}, max_steps=1)
    with pytest.raises(InvalidInputError, match="unknown method"):
        compare_escapes(obj, theta, methods=("gd", "adam"), max_steps=1)
    with pytest.raises(InvalidInputError, match="'gd' has no option 'radius'"):
        compare_escapes(obj, theta, methods=("gd",), options={"gd": {"radius": 1.0}})


def test_results_print_and_serialise(obj):
    r = escape_saddle(obj, torch.tensor([1e-6, 0.0], dtype=F64), target_loss=1e-8)
    d = r.to_dict()
    assert d["path"][0] == r.path[0].to_dict() and d["path"][0]["action"] == "start"
    assert str(r.path[1]).startswith("step 1 (curvature): loss")


# ------------------------------------------------------------- negative_curvature_direction
def _spectrum(values, vectors, rtol=1e-6):
    return Spectrum(
        eigenvalues=torch.tensor(values, dtype=F64),
        eigenvectors=torch.tensor(vectors, dtype=F64),
        num_params=2,
        method="dense",
        hvps=0,
        rtol=rtol,
        atol=0.0,
    )


def test_negative_direction_points_against_the_gradient(obj):
    spec = hessian_spectrum(obj, torch.zeros(2, dtype=F64))  # λ = −2 along ±(1, 1)/√2
    for g, sign in (((1.0, 2.0), -1.0), ((-1.0, -0.5), 1.0), ((1.0, -1.0), 1.0)):
        grad = torch.tensor(g, dtype=F64)
        u, lam = negative_curvature_direction(spec, grad)
        assert lam == pytest.approx(-2.0)
        assert float(grad @ u) <= 0
        assert u.tolist() == pytest.approx([sign * 2**-0.5, sign * 2**-0.5])


def test_negative_direction_at_zero_gradient_is_deterministic_and_unit():
    # Column 0 = (0.6, −0.8)·2, not unit, largest entry negative: flipped and normalised.
    spec = _spectrum([-1.0, 2.0], [[1.2, 1.6], [-1.6, 1.2]])
    u, lam = negative_curvature_direction(spec, torch.zeros(2, dtype=F64))
    assert u.tolist() == pytest.approx([-0.6, 0.8]) and lam == -1.0
    # g orthogonal to u: the same rule decides.
    u2, _ = negative_curvature_direction(spec, torch.tensor([0.8, 0.6], dtype=F64))
    assert u2.tolist() == pytest.approx([-0.6, 0.8])
    flipped = _spectrum([-1.0, 2.0], [[-1.2, 1.6], [1.6, 1.2]])
    u3, _ = negative_curvature_direction(flipped, torch.zeros(2, dtype=F64))
    assert u3.tolist() == pytest.approx([-0.6, 0.8])


def test_negative_direction_is_none_without_curvature_below_the_threshold():
    g = torch.tensor([1.0, 0.0], dtype=F64)
    positive = spectrum_from_matrix(torch.diag(torch.tensor([1.0, 2.0], dtype=F64)))
    assert negative_curvature_direction(positive, g) == (None, None)
    # −1e-9 lies inside the zero band max(atol, rtol·max|λ|) = 1e-6·2: zero, not negative.
    tiny = spectrum_from_matrix(torch.diag(torch.tensor([-1e-9, 2.0], dtype=F64)), rtol=1e-6)
    assert negative_curvature_direction(tiny, g) == (None, None)
    # Just outside the band it is negative.
    out = spectrum_from_matrix(torch.diag(torch.tensor([-1e-5, 2.0], dtype=F64)), rtol=1e-6)
    assert negative_curvature_direction(out, g)[1] == pytest.approx(-1e-5)
    no_vectors = spectrum_from_matrix(
        torch.diag(torch.tensor([-1.0, 2.0], dtype=F64)), eigenvectors=False
    )
    assert negative_curvature_direction(no_vectors, g) == (None, None)


def test_cli_escape_compares_methods(tmp_path):
    from click.testing import CliRunner

    from saddlescope.cli import cli

    res = CliRunner().invoke(cli, ["escape", "--out", str(tmp_path), "--max-steps", "200"])
    assert res.exit_code == 0, res.output
    for m in METHODS:
        assert m in res.output
    assert (tmp_path / "escape_worked_example.png").stat().st_size > 5_000
