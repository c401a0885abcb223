"""The dimension effect: restriction to subspaces, function-preserving widening, the split law."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from conftest import assert_unchanged, make_cnn, snapshot
from saddlescope import (
    InvalidInputError,
    Objective,
    SaddlescopeError,
    classify,
    find_critical_point,
    hessian_spectrum,
    toy,
)
from saddlescope.data import load_dataset
from saddlescope.lifting import (
    EscapeRecord,
    Inertia,
    LiftReport,
    SplitRow,
    add_neuron,
    lift_experiment,
    module_at,
    predicted_inertia,
    restrict,
    split_blocks,
    split_coordinates,
    split_gain_matrix,
    split_neuron,
    split_objective,
    split_theta,
    train_strict_minimum,
)
from saddlescope.models import mlp

F64 = torch.float64
RATIOS = (-1.0, -0.5, 0.0, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0)


def inertia(cp) -> Inertia:
    return Inertia(cp.inertia.n_neg, cp.inertia.n_zero, cp.inertia.n_pos)


def data_for(d_in: int, d_out: int, n: int = 15, seed: int = 0, classes: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=g, dtype=F64)
    if classes:
        return x, torch.randint(0, classes, (n,), generator=g)
    return x, torch.randn(n, d_out, generator=g, dtype=F64)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are tiny: on two (busy) cores, thread hand-offs cost more than the maths."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def narrow():
    """A strict local minimum of a 2-2-1 tanh MLP (teacher-student with noise), float64."""
    return train_strict_minimum(dataset="teacher-student", hidden=2, n_samples=40, noise=0.1)


@pytest.fixture(scope="module")
def narrow_multi():
    """A strict local minimum of a 2-2-2 tanh MLP: two outputs, so C_j ≠ 0."""
    return train_strict_minimum(dataset="teacher-student", hidden=2, n_samples=40, d_out=2)


@pytest.fixture(scope="module")
def report():
    return lift_experiment()


# ============================================================================ restriction
def test_worked_example_origin_is_a_minimum_on_a_line_and_a_saddle_in_the_plane():
    obj = toy.worked_example_objective()
    origin = torch.zeros(2, dtype=F64)
    full = classify(obj, origin)
    assert full.kind == "saddle" and (full.inertia.n_neg, full.inertia.n_pos) == (1, 1)

    d = torch.tensor([1.0, -1.0], dtype=F64) / math.sqrt(2)
    line = restrict(obj, origin, d)  # a vector is one direction
    assert line.num_params == 1 and torch.equal(line.theta0, torch.zeros(1, dtype=F64))
    cp = classify(line, line.theta0)
    assert cp.kind == "minimum" and cp.strict and cp.inertia.n_pos == 1
    for t in (-1.3, 0.4, 2.0):  # L(t·(1, −1)/√2) = (1 + t²/2)²
        z = torch.tensor([t], dtype=F64)
        assert float(line.loss(z)) == pytest.approx((1 + t * t / 2) ** 2, rel=1e-14)
    # The other diagonal is the way out: there the origin is a maximum of the restriction.
    down = restrict(obj, origin, torch.tensor([[1.0], [1.0]], dtype=F64) / math.sqrt(2))
    assert classify(down, down.theta0).kind == "maximum"


def test_restriction_has_projected_gradient_and_hessian():
    model = mlp(3, [4, 3], 2, seed=1)
    obj = Objective(model, nn.MSELoss(), data_for(3, 2))
    g = torch.Generator().manual_seed(5)
    theta0 = obj.theta0 + 0.1 * torch.randn(obj.num_params, generator=g, dtype=F64)
    B = torch.randn(obj.num_params, 3, generator=g, dtype=F64)
    sub = restrict(obj, theta0, B)
    z = torch.tensor([0.2, -0.1, 0.05], dtype=F64)
    theta = theta0 + B @ z
    assert sub.num_params == 3
    assert float(sub.loss(z)) == pytest.approx(float(obj.loss(theta)), rel=1e-13)
    assert torch.allclose(sub.grad(z), B.mT @ obj.grad(theta), rtol=1e-11, atol=1e-13)
    assert torch.allclose(sub.hessian(z), B.mT @ obj.hessian(theta) @ B, rtol=1e-10, atol=1e-12)
    assert sub.describe()["num_samples"] == obj.num_samples


def test_a_saddle_from_the_search_is_a_minimum_on_its_positive_eigenspace():
    data = load_dataset("teacher-student", n_samples=30, d_in=2, teacher_hidden=4, noise=0.1)
    obj = Objective(mlp(2, [3], 1, seed=3), nn.MSELoss(), (data.inputs, data.targets))
    search = find_critical_point(obj, obj.theta0, method="newton-mr")
    assert search.converged
    cp = classify(obj, search.theta)
    assert cp.kind == "saddle" and cp.inertia.n_neg >= 1
    spec = cp.spectrum
    positive = spec.eigenvectors[:, spec.eigenvalues > spec.threshold]
    sub = restrict(obj, cp.theta, positive)
    low = classify(sub, sub.theta0)
    assert low.kind == "minimum" and low.strict and low.inertia.n_pos == positive.shape[1]
    # ... and the full space has the way out that the subspace hides.
    assert float(obj.loss(cp.theta + 0.05 * cp.escape_direction)) < cp.loss


def test_restriction_leaves_the_objective_and_model_alone():
    model = mlp(2, [3], 1, seed=0)
    before = snapshot(model)
    obj = Objective(model, nn.MSELoss(), data_for(2, 1))
    loss0 = float(obj.loss(obj.theta0))
    sub = restrict(obj, obj.theta0, torch.eye(obj.num_params, dtype=F64)[:, :2])
    sub.hessian(sub.theta0 + 0.3)
    classify(sub, sub.theta0)
    assert float(obj.loss(obj.theta0)) == loss0
    assert torch.equal(obj.theta0, Objective(model, nn.MSELoss(), data_for(2, 1)).theta0)
    assert_unchanged(model, before)


@pytest.mark.parametrize(
    "basis",
    [
        torch.zeros(5, 2),  # wrong number of rows
        torch.zeros(13),  # a vector of the wrong length
        torch.zeros(2, 4, 1),  # 3-D
        torch.zeros(4, 0),  # no directions
        torch.full((4, 1), float("nan")),
        torch.zeros(4, 1, dtype=torch.complex128),
    ],
)
def test_restrict_rejects_a_bad_basis(basis):
    obj = Objective(nn.Linear(3, 1).double(), nn.MSELoss(), data_for(3, 1))  # 4 parameters
    with pytest.raises(InvalidInputError, match="basis"):
        restrict(obj, torch.zeros(4), basis)


def test_restrict_rejects_a_bad_theta0():
    obj = toy.worked_example_objective()
    with pytest.raises(InvalidInputError, match="theta0"):
        restrict(obj, torch.zeros(3), torch.ones(2, 1))


# ============================================================================ widening
MODELS = [
    ("tanh 2-3-1", lambda: mlp(2, [3], 1, seed=0), 2, 1),
    ("gelu 3-4-3-2", lambda: mlp(3, [4, 3], 2, activation="gelu", seed=1), 3, 2),
    ("relu 3-4-3-2", lambda: mlp(3, [4, 3], 2, activation="relu", seed=2), 3, 2),
    (
        "no bias",
        lambda: nn.Sequential(
            nn.Linear(2, 3, bias=False), nn.Tanh(), nn.Linear(3, 2, bias=False)
        ).double(),
        2,
        2,
    ),
]


@pytest.mark.parametrize(("name", "build", "d_in", "d_out"), MODELS, ids=[m[0] for m in MODELS])
def test_split_and_add_preserve_the_function_and_leave_the_model_alone(name, build, d_in, d_out):
    model = build()
    model.train()
    x = data_for(d_in, d_out, n=20)[0]
    model(x).square().sum().backward()  # .grad set: it must survive too
    with torch.no_grad():
        y = model(x)
    before = snapshot(model)
    rng = torch.get_rng_state()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for layer in range(len(linears) - 1):
        width = linears[layer].out_features
        for neuron in range(width):
            for lam in (-1.3, 0.0, 0.5, 0.7, 1.0, 2.0):
                wide = split_neuron(model, layer, neuron, lam)
                assert wide is not model and wide.training
                w = [m for m in wide if isinstance(m, nn.Linear)]
                assert w[layer].out_features == width + 1 and w[layer + 1].in_features == width + 1
                with torch.no_grad():
                    out = wide(x)
                assert torch.allclose(out, y, rtol=0, atol=1e-12), (layer, neuron, lam)
                if lam == 0.5:
                    assert torch.equal(w[layer].weight[-1], linears[layer].weight[neuron])
                    assert torch.equal(w[layer + 1].weight[:, -1], w[layer + 1].weight[:, neuron])
        size = linears[layer].in_features + (linears[layer].bias is not None)
        for incoming in (None, torch.arange(size) * 0.3):
            wide = add_neuron(model, layer, incoming, seed=4)
            with torch.no_grad():
                out = wide(x)
            assert torch.allclose(out, y, rtol=0, atol=1e-12)
            w = [m for m in wide if isinstance(m, nn.Linear)]
            assert bool((w[layer + 1].weight[:, -1] == 0).all())
    assert_unchanged(model, before)
    assert torch.equal(torch.get_rng_state(), rng)  # the global random stream is not drawn from


def test_add_neuron_is_seeded_and_keeps_requires_grad_flags():
    model = mlp(2, [3], 1, seed=0)
    model[0].bias.requires_grad_(False)
    a, b, c = (add_neuron(model, 0, seed=s) for s in (1, 1, 2))
    assert torch.equal(a[0].weight, b[0].weight) and not torch.equal(a[0].weight, c[0].weight)
    assert a[0].bias.requires_grad is False and a[0].weight.requires_grad is True
    assert split_neuron(model, 0, 1)[0].bias.requires_grad is False
    assert model[0].bias.requires_grad is False and model[0].weight.shape == (3, 2)


def test_split_maps_a_critical_point_to_a_critical_point(narrow):
    obj, cp = narrow.objective, narrow.critical_point
    assert cp.grad_norm <= 1e-10
    for j in range(2):
        for lam in (-0.5, 0.0, 0.3, 1.0, 1.7):
            wide_model = split_neuron(narrow.model, 0, j, lam)
            wide = Objective(
                wide_model, nn.MSELoss(), [(b.inputs, b.targets) for b in obj._batches]
            )
            loss, g = wide.loss_and_grad(wide.theta0)
            assert float(torch.linalg.vector_norm(g)) <= 1e-10 * max(1.0, abs(lam)) * 3
            assert float(loss) == pytest.approx(cp.loss, rel=1e-13)
            # the flat-vector map agrees with the module map
            assert torch.equal(split_theta(obj, cp.theta, 0, j, lam), wide.theta0)
            assert torch.equal(split_objective(obj, 0, j, lam, cp.theta).theta0, wide.theta0)


def test_add_neuron_keeps_criticality_only_when_the_new_unit_is_silent(narrow):
    obj, cp = narrow.objective, narrow.critical_point
    data = [(b.inputs, b.targets) for b in obj._batches]
    # A constant unit (zero input weights, any bias): its output folds into the next bias.
    const = Objective(add_neuron(narrow.model, 0, [0.0, 0.0, 0.7]), nn.MSELoss(), data)
    assert float(torch.linalg.vector_norm(const.grad(const.theta0))) <= 1e-9
    # A copy of unit 0's incoming weights is the split with λ = 1.
    w, b = narrow.model[0].weight[0], narrow.model[0].bias[:1]
    copy_ = Objective(add_neuron(narrow.model, 0, torch.cat([w, b])), nn.MSELoss(), data)
    assert torch.allclose(copy_.theta0, split_theta(obj, cp.theta, 0, 0, 1.0), atol=0, rtol=0)
    assert float(torch.linalg.vector_norm(copy_.grad(copy_.theta0))) <= 1e-9
    # A random unit: the gradient is zero except along the new outgoing weight.
    rand = Objective(add_neuron(narrow.model, 0, seed=0), nn.MSELoss(), data)
    g = rand.unflatten(rand.grad(rand.theta0))
    assert abs(float(g["2.weight"][0, -1])) > 1e-4
    rest = torch.cat([t.reshape(-1) for n, t in g.items() if n != "2.weight"])
    assert float(rest.abs().max()) <= 1e-9 and float(g["2.weight"][0, :-1].abs().max()) <= 1e-9


# ============================================================================ the split theorem
CONGRUENCE = [
    ("tanh 2-3-1 mse", [3], 1, nn.MSELoss(), 0),
    ("tanh 2-3-2-2 mse", [3, 2], 2, nn.MSELoss(), 0),
    ("gelu 2-3-4-3 ce", [3, 4], 3, nn.CrossEntropyLoss(), 3),
]


@pytest.mark.parametrize(("name", "hidden", "d_out", "loss_fn", "classes"), CONGRUENCE)
def test_the_split_hessian_is_congruent_to_narrow_plus_block(name, hidden, d_out, loss_fn, classes):
    act = "gelu" if name.startswith("gelu") else "tanh"
    model = mlp(2, hidden, d_out, activation=act, seed=1)
    obj = Objective(model, loss_fn, data_for(2, d_out, classes=classes))
    theta = obj.theta0  # any θ: the congruence does not need a critical point
    for layer in range(len(hidden)):
        blocks = split_blocks(obj, theta, layer, 1)
        assert float(blocks.gain.abs().max()) > 1e-3 and float(blocks.coupling.abs().max()) > 1e-3
        p, m = [2, *hidden][layer] + 1, [*hidden, d_out][layer + 1]
        assert blocks.gain.shape == (p, p) and blocks.coupling.shape == (p, m)
        for lam in (-0.7, 0.0, 0.3, 1.0, 2.5):
            T = split_coordinates(obj, layer, 1, lam)
            wide = split_objective(obj, layer, 1, lam, theta)
            assert abs(abs(float(torch.linalg.det(T))) - 1) < 1e-12
            lhs = T.mT @ wide.hessian(wide.theta0) @ T
            rhs = torch.block_diag(obj.hessian(theta), blocks.block(lam))
            assert torch.allclose(lhs, rhs, rtol=0, atol=1e-13 * max(1.0, lam * lam)), (layer, lam)


def test_split_gain_matrix_is_the_closed_form_for_a_one_hidden_layer_mse_net(narrow):
    obj, theta = narrow.objective, narrow.theta
    p = obj.unflatten(theta)
    x, y = obj._batches[0].inputs, obj._batches[0].targets
    W, b, V, c = p["0.weight"], p["0.bias"], p["2.weight"], p["2.bias"]
    a = x @ W.mT + b
    f = torch.tanh(a) @ V.mT + c
    delta = 2 * (f - y) / x.shape[0]  # ∂/∂f of the mean squared error over N samples, d_out = 1
    xt = torch.cat([x, torch.ones_like(x[:, :1])], dim=1)
    for j in range(2):
        t = torch.tanh(a[:, j])
        s2 = -2 * t * (1 - t * t)  # tanh''
        B = (xt * ((delta @ V[:, j]) * s2)[:, None]).mT @ xt
        C = (xt * (1 - t * t)[:, None]).mT @ delta
        assert torch.allclose(split_gain_matrix(obj, theta, 0, j), B, rtol=1e-12, atol=1e-15)
        assert torch.allclose(split_blocks(obj, theta, 0, j).coupling, C, atol=1e-15)
        assert float(C.abs().max()) < 1e-9  # scalar output: C_j·v_j = ∂L/∂w_j = 0 ⇒ C_j = 0


def test_predicted_inertia_matches_the_dense_spectrum_at_a_strict_minimum(narrow):
    obj, cp = narrow.objective, narrow.critical_point
    assert cp.kind == "minimum" and cp.strict and inertia(cp) == Inertia(0, 0, obj.num_params)
    wide = split_objective(obj, 0, 0, 0.5, cp.theta)
    for j in range(2):
        blocks = split_blocks(obj, cp.theta, 0, j)
        eig = blocks.gain_eigenvalues
        tol = 1e-6 * float(eig.abs().max())
        n_neg_b, n_pos_b = int((eig < -tol).sum()), int((eig > tol).sum())
        assert n_neg_b + n_pos_b == 3  # B_j is invertible here (and indefinite)
        for lam in RATIOS:
            spec = hessian_spectrum(wide, split_theta(obj, cp.theta, 0, j, lam))
            observed = Inertia(spec.inertia.n_neg, spec.inertia.n_zero, spec.inertia.n_pos)
            predicted = predicted_inertia(cp, blocks, lam)
            assert observed == predicted, (j, lam, str(spec))
            # m = 1, C_j = 0: the closed form of the module docstring
            if lam in (0.0, 1.0):
                assert predicted == Inertia(0, 3 + 1, obj.num_params)
            elif 0 < lam < 1:
                assert predicted == Inertia(n_neg_b, 1, obj.num_params + n_pos_b)
            else:
                assert predicted == Inertia(n_pos_b, 1, obj.num_params + n_neg_b)


def test_predicted_inertia_with_a_coupling_block(narrow_multi):
    obj, cp = narrow_multi.objective, narrow_multi.critical_point
    assert cp.kind == "minimum" and cp.strict
    wide = split_objective(obj, 0, 0, 0.5, cp.theta)
    for j in range(2):
        blocks = split_blocks(obj, cp.theta, 0, j)
        s = torch.linalg.svdvals(blocks.coupling)
        assert float(s[0]) > 1e-3 and float(s[-1]) < 1e-8  # rank m − 1 = 1: C_j·v_j = 0
        for lam in (-0.5, 0.0, 0.3, 1.0, 1.7):
            wcp = classify(wide, split_theta(obj, cp.theta, 0, j, lam))
            predicted = predicted_inertia(cp, blocks, lam)
            assert inertia(wcp) == predicted, (j, lam, str(wcp))
            assert predicted.n_neg >= 1 and wcp.kind == "saddle"  # a saddle even at λ ∈ {0, 1}


def test_inertia_arithmetic_and_views(narrow):
    cp = narrow.critical_point
    a = Inertia.of(cp)
    assert a == Inertia.of(cp.spectrum) == Inertia.of(a)
    assert (a + Inertia(1, 2, 3)).total == a.total + 6
    assert str(Inertia(1, 0, 2)) == "(n-=1, n0=0, n+=2)"
    assert Inertia(1, 0, 2).to_dict() == {"n_neg": 1, "n_zero": 0, "n_pos": 2}
    lanczos = hessian_spectrum(narrow.objective, cp.theta, k=1, method="lanczos")
    with pytest.raises(InvalidInputError, match="extreme"):
        Inertia.of(lanczos)
    with pytest.raises(InvalidInputError, match="Inertia"):
        Inertia.of("(0, 0, 9)")  # type: ignore[arg-type]
    blocks = split_blocks(narrow.objective, cp.theta, 0, 0)
    assert "B_j (3, 3)" in str(blocks) and json.dumps(blocks.to_dict())
    # the tolerance decides what counts as zero in K(λ): a huge atol makes the block all zero
    assert predicted_inertia(a, blocks, 0.5, atol=1.0) == a + Inertia(0, 3 + 1, 0)
    assert blocks.block(0.5).shape == (4, 4)


# ============================================================================ the experiment
def test_lift_experiment_turns_a_minimum_into_saddles_and_escapes_below_it(report):
    assert isinstance(report, LiftReport)
    assert report.narrow_min_eigenvalue > report.narrow_tolerance > 0
    assert report.narrow_loss > 0 and report.wide_params == report.narrow_params + 4
    assert len(report.rows) == 2 * 6 and report.all_match
    assert any(r.kind == "saddle" and r.n_neg > 0 for r in report.rows)
    assert report.restricted_kind == "minimum"
    e = report.escape
    assert e is not None and report.escaped_below
    assert e.saddle_loss == pytest.approx(report.narrow_loss, rel=1e-12)
    assert e.loss_after_step < e.saddle_loss and e.loss_final < report.narrow_loss
    assert e.curvature < 0
    text = str(report)
    assert "strict minimum" in text and "predicted" in text and "✓" in text and "✗" not in text
    d = report.to_dict()
    assert json.loads(json.dumps(d))["all_match"] is True and len(d["rows"]) == 12


def test_lift_experiment_is_deterministic(report):
    again = lift_experiment()
    assert again.to_dict() | {"seconds": 0} == report.to_dict() | {"seconds": 0}


# ============================================================================ bad input
def test_non_mlp_models_are_refused():
    bad = [
        make_cnn(),
        nn.Linear(2, 3),  # not a Sequential
        nn.Sequential(nn.Linear(2, 3)),  # no hidden layer
        nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Tanh(), nn.Linear(3, 1)),
        nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Tanh(), nn.Linear(3, 1)),
        nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1), nn.Tanh()),
        nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=-1), nn.Linear(3, 1)),
    ]
    for model in bad:
        before = snapshot(model)
        with pytest.raises(InvalidInputError, match="MLP"):
            split_neuron(model, 0, 0)
        with pytest.raises(InvalidInputError, match="MLP"):
            add_neuron(model, 0)
        assert_unchanged(model, before)
    obj = toy.worked_example_objective()
    with pytest.raises(InvalidInputError, match="MLP"):
        split_blocks(obj, obj.theta0, 0, 0)


def test_out_of_range_and_malformed_arguments_are_refused():
    model = mlp(2, [3, 4], 1)
    cases = [
        (lambda: split_neuron(model, 2, 0), "layer = 2 is out of range: the model has 2 hidden"),
        (lambda: split_neuron(model, -1, 0), "layer = -1 is out of range"),
        (lambda: split_neuron(model, 0, 3), "neuron = 3 is out of range"),
        (lambda: split_neuron(model, 1, 4), "neuron = 4 is out of range"),
        (lambda: split_neuron(model, 1.0, 0), "layer must be an integer"),
        (lambda: split_neuron(model, 0, True), "neuron must be an integer"),
        (lambda: split_neuron(model, 0, 0, float("nan")), "ratio must be finite"),
        (lambda: split_neuron(model, 0, 0, "half"), "ratio must be a real number"),
        (lambda: add_neuron(model, 5), "layer = 5 is out of range"),
        (lambda: add_neuron(model, 0, [1.0, 2.0]), "length fan_in \\+ 1 = 3"),
        (lambda: add_neuron(model, 0, [1.0, float("inf"), 0.0]), "NaN or Inf"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidInputError, match=message):
            call()
    obj = Objective(model, nn.MSELoss(), data_for(2, 1))
    with pytest.raises(InvalidInputError, match="layer = 3"):
        split_theta(obj, obj.theta0, 3, 0, 0.5)
    with pytest.raises(InvalidInputError, match="neuron = 9"):
        split_blocks(obj, obj.theta0, 0, 9)
    with pytest.raises(InvalidInputError, match="length"):
        split_theta(obj, torch.zeros(3), 0, 0, 0.5)
    frozen = mlp(2, [3], 1)
    frozen[0].weight.requires_grad_(False)
    fobj = Objective(frozen, nn.MSELoss(), data_for(2, 1))
    with pytest.raises(InvalidInputError, match="frozen"):
        split_objective(fobj, 0)
    with pytest.raises(InvalidInputError, match="ratios"):
        lift_experiment(ratios=())
    with pytest.raises(InvalidInputError, match="hidden"):
        lift_experiment(hidden=(2, 2))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="unknown dataset"):
        train_strict_minimum(dataset="digits")
    with pytest.raises(SaddlescopeError, match="no strict local minimum"):
        train_strict_minimum(dataset="sinc", hidden=2, max_seeds=1, train_steps=1)


def test_module_at_is_a_fresh_copy(narrow):
    obj = narrow.objective
    theta = obj.theta0 + 1.0
    m = module_at(obj, theta)
    assert m is not obj._module and all(p.requires_grad for p in m.parameters())
    assert torch.equal(Objective(m, nn.MSELoss(), data_for(2, 1)).theta0, theta)
    assert torch.equal(obj.theta0, narrow.objective.theta0)
    assert not any(p.requires_grad for p in obj._module.parameters())


def test_cli_lift(tmp_path):
    import json

    from click.testing import CliRunner

    from saddlescope.cli import cli

    res = CliRunner().invoke(cli, ["lift", "--out", str(tmp_path), "--ratio", "0.5"])
    assert res.exit_code == 0, res.output
    assert "saddle" in res.output and "✓" in res.output
    data = json.loads((tmp_path / "lift.json").read_text())
    assert data


def test_narrow_minimum_to_dict_and_str(narrow):
    cp = narrow.critical_point
    d = json.loads(json.dumps(narrow.to_dict()))
    assert d["widths"] == [2, 2, 1] and d["seed"] == narrow.seed
    assert d["seeds_tried"] == narrow.seeds_tried
    assert d["objective"]["num_params"] == narrow.objective.num_params == 9
    assert d["critical_point"]["kind"] == "minimum" and d["critical_point"]["loss"] == cp.loss
    text = str(narrow)
    assert "strict minimum" in text and "MLP 2-2-1" in text and "9 params" in text
    assert "40 samples" in text and f"loss {cp.loss:.6g}" in text
    assert f"seed {narrow.seed} ({narrow.seeds_tried} tried)" in text


def test_split_row_and_escape_record_to_dict_and_str():
    row = SplitRow(0, 1.5, "saddle", 1, 1, 8, Inertia(1, 1, 8), 3e-11, -0.0123)
    d = json.loads(json.dumps(row.to_dict()))
    assert d["matches"] is True and d["predicted"] == {"n_neg": 1, "n_zero": 1, "n_pos": 8}
    text = str(row)
    assert text.startswith("unit 0, λ = 1.5: saddle (n-=1, n0=1, n+=8)")
    assert "predicted (n-=1, n0=1, n+=8) ✓" in text and "-0.0123" in text
    bad = SplitRow(1, 0.5, "minimum", 0, 1, 9, Inertia(1, 1, 8), 1e-11, 0.5)
    assert "✗" in str(bad) and bad.to_dict()["matches"] is False
    e = EscapeRecord(0, 1.5, 0.0421, -0.0123, 0.8, 0.0405, 0.0125, 2e-9, 57)
    d = json.loads(json.dumps(e.to_dict()))
    assert d["loss_final"] == 0.0125 and d["evaluations"] == 57
    text = str(e)
    assert "unit 0, λ = 1.5" in text and "curvature -0.0123" in text
    assert "0.0421 → 0.0405" in text and "57 evaluations" in text and "→ 0.0125" in text
