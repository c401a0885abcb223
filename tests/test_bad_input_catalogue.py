"""The catalogue of bad inputs through the public API: each case must raise a saddlescope error
whose message names the argument (issue 13). The CLI's bad inputs are in
``test_bad_input_cli.py``; ``python tools/count_bad_inputs.py`` counts both with the other
modules marked ``bad_input``.

A case is (call, error type, pattern): ``call`` takes the shared fixtures and must raise
``error`` with a message matching ``pattern``. Numeric arguments are tried with every value of
their kind that is wrong (NaN, ±inf, zero, negatives, fractions, text, bools, None).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
import torch
from torch import nn

import saddlescope as ss
from saddlescope import InvalidInputError, NonFiniteError, SaddlescopeError, toy

pytestmark = pytest.mark.bad_input

F64 = torch.float64
NAN, INF = math.nan, math.inf

# Wrong values by kind: what a number of that kind must never be.
POSITIVE_INT = (0, -1, 2.5, True, "3", INF)
NONNEG_INT = (-1, 2.5, True, "3")
SEED = (-1, 2.5, "0", True, None)
POSITIVE = (0, -1.0, NAN, INF, -INF, "x", True)
NONNEG = (-1e-3, NAN, INF, "x", True)
FRACTION = (0, 1, 1.5, -0.2, NAN, "x")
TOLERANCE = (-1e-3, NAN, INF, "x", True)  # a zero band of width 0 is allowed
SECONDS = (-1.0, NAN, "x", True)  # 0 and inf are choices (never, always)


@cache
def objective() -> ss.Objective:
    return toy.worked_example_objective()


def theta() -> torch.Tensor:
    return torch.tensor([0.5, 0.1], dtype=F64)


@cache
def operator() -> ss.Operator:
    return objective().hessian_operator(theta())


@cache
def density() -> ss.SpectralDensity:
    return ss.slq(operator(), lanczos_steps=2, probes=2)


@cache
def spectrum() -> ss.Spectrum:
    return ss.hessian_spectrum(objective(), theta())


def _calls(fn: Callable[..., Any], *args: Callable[[], Any]) -> Callable[..., Any]:
    """A call of ``fn`` on the fixtures named by ``args`` (built lazily) and keyword values."""
    return lambda **kw: fn(*(a() for a in args), **kw)


# (label, call, argument, wrong values, pattern): each value is one case.
NUMERIC: list[tuple[str, Callable[..., Any], str, tuple[Any, ...], str]] = [
    ("classify", _calls(ss.classify, objective, theta), "grad_tol", POSITIVE, "grad_tol"),
    ("classify", _calls(ss.classify, objective, theta), "rtol", TOLERANCE, "rtol"),
    ("classify", _calls(ss.classify, objective, theta), "atol", NONNEG, "atol"),
    ("classify", _calls(ss.classify, objective, theta), "k", POSITIVE_INT, r"\bk\b"),
    ("classify", _calls(ss.classify, objective, theta), "seed", SEED, "seed"),
    (
        "classify",
        _calls(ss.classify, objective, theta),
        "loss_lower_bound",
        (NAN, INF, -INF, "x", True),
        "loss_lower_bound",
    ),
    (
        "classify",
        _calls(ss.classify, objective, theta),
        "max_dense_seconds",
        SECONDS,
        "max_dense_seconds",
    ),
    (
        "find_critical_point",
        _calls(ss.find_critical_point, objective, theta),
        "grad_tol",
        POSITIVE,
        "grad_tol",
    ),
    (
        "find_critical_point",
        _calls(ss.find_critical_point, objective, theta),
        "max_steps",
        NONNEG_INT,
        "max_steps",
    ),
    (
        "find_critical_point",
        _calls(ss.find_critical_point, objective, theta),
        "minres_rtol",
        POSITIVE,
        "minres_rtol",
    ),
    (
        "find_critical_point",
        _calls(ss.find_critical_point, objective, theta),
        "minres_maxiter",
        POSITIVE_INT,
        "minres_maxiter",
    ),
    (
        "find_critical_point",
        _calls(ss.find_critical_point, objective, theta),
        "flat_tol",
        (0, -0.2, 1.5, NAN, "x", True),
        "flat_tol",
    ),
    (
        "find_critical_point",
        _calls(ss.find_critical_point, objective, theta),
        "armijo",
        FRACTION,
        "armijo",
    ),
    (
        "find_critical_point",
        _calls(ss.find_critical_point, objective, theta),
        "min_step",
        POSITIVE,
        "min_step",
    ),
    (
        "find_critical_point",
        _calls(ss.find_critical_point, objective, theta),
        "max_step_norm",
        POSITIVE,
        "max_step_norm",
    ),
    (
        "gradient_flatness",
        _calls(ss.gradient_flatness, objective, theta),
        "flat_tol",
        (0, -0.2, 1.5, NAN, "x", True),
        "flat_tol",
    ),
    (
        "gradient_flatness",
        _calls(ss.gradient_flatness, objective, theta),
        "max_steps",
        POSITIVE_INT,
        "max_steps",
    ),
    (
        "gradient_flatness",
        _calls(ss.gradient_flatness, objective, theta),
        "rtol",
        TOLERANCE,
        "rtol",
    ),
    (
        "find_critical_point",
        _calls(ss.find_critical_point, objective, theta),
        "max_hvps",
        NONNEG_INT,
        "max_hvps",
    ),
    (
        "find_critical_point",
        _calls(ss.find_critical_point, objective, theta),
        "max_seconds",
        POSITIVE,
        "max_seconds",
    ),
    (
        "find_critical_point",
        _calls(ss.find_critical_point, objective, theta),
        "rtol",
        TOLERANCE,
        "rtol",
    ),
    (
        "hessian_spectrum",
        _calls(ss.hessian_spectrum, objective, theta),
        "k",
        POSITIVE_INT,
        r"\bk\b",
    ),
    ("hessian_spectrum", _calls(ss.hessian_spectrum, objective, theta), "rtol", TOLERANCE, "rtol"),
    (
        "hessian_spectrum",
        _calls(ss.hessian_spectrum, objective, theta),
        "lanczos_tol",
        TOLERANCE,
        "lanczos_tol",
    ),
    (
        "hessian_spectrum",
        _calls(ss.hessian_spectrum, objective, theta),
        "lanczos_steps",
        POSITIVE_INT,
        "lanczos_steps",
    ),
    (
        "hessian_spectrum",
        _calls(ss.hessian_spectrum, objective, theta),
        "max_restarts",
        NONNEG_INT,
        "max_restarts",
    ),
    ("hessian_spectrum", _calls(ss.hessian_spectrum, objective, theta), "seed", SEED, "seed"),
    ("lanczos", lambda **kw: ss.lanczos(operator(), **{"k": 1, **kw}), "k", POSITIVE_INT, r"\bk\b"),
    (
        "lanczos",
        lambda **kw: ss.lanczos(operator(), **{"k": 1, **kw}),
        "lanczos_tol",
        TOLERANCE,
        "lanczos_tol",
    ),
    (
        "lanczos",
        lambda **kw: ss.lanczos(operator(), **{"k": 1, **kw}),
        "lanczos_steps",
        POSITIVE_INT,
        "lanczos_steps",
    ),
    ("lanczos", lambda **kw: ss.lanczos(operator(), **{"k": 1, **kw}), "floor", NONNEG, "floor"),
    ("lanczos", lambda **kw: ss.lanczos(operator(), **{"k": 1, **kw}), "seed", SEED, "seed"),
    ("slq", _calls(ss.slq, operator), "probes", POSITIVE_INT, "probes"),
    ("slq", _calls(ss.slq, operator), "lanczos_steps", POSITIVE_INT, "lanczos_steps"),
    ("slq", _calls(ss.slq, operator), "seed", SEED, "seed"),
    ("estimate_inertia", _calls(ss.estimate_inertia, operator), "rtol", TOLERANCE, "rtol"),
    ("estimate_inertia", _calls(ss.estimate_inertia, operator), "probes", POSITIVE_INT, "probes"),
    (
        "estimate_inertia",
        _calls(ss.estimate_inertia, operator),
        "confidence",
        FRACTION,
        "confidence",
    ),
    ("estimate_inertia", _calls(ss.estimate_inertia, operator), "seed", SEED, "seed"),
    ("inertia_from_density", _calls(ss.inertia_from_density, density), "rtol", TOLERANCE, "rtol"),
    (
        "inertia_from_density",
        lambda **kw: ss.inertia_from_density(density(), **{"rtol": 1e-6, **kw}),
        "confidence",
        FRACTION,
        "confidence",
    ),
    (
        "hutchinson_trace",
        _calls(ss.hutchinson_trace, operator),
        "products",
        POSITIVE_INT,
        "products",
    ),
    ("hutchinson_trace", _calls(ss.hutchinson_trace, operator), "seed", SEED, "seed"),
    ("hutch_pp_trace", _calls(ss.hutch_pp_trace, operator), "products", POSITIVE_INT, "products"),
    (
        "escape_saddle",
        _calls(ss.escape_saddle, objective, theta),
        "max_steps",
        NONNEG_INT,
        "max_steps",
    ),
    ("escape_saddle", _calls(ss.escape_saddle, objective, theta), "lr", POSITIVE, r"\blr\b"),
    ("escape_saddle", _calls(ss.escape_saddle, objective, theta), "decrease", POSITIVE, "decrease"),
    (
        "escape_saddle",
        _calls(ss.escape_saddle, objective, theta),
        "target_loss",
        (NAN, INF, "x", True),
        "target_loss",
    ),
    ("escape_saddle", _calls(ss.escape_saddle, objective, theta), "seed", SEED, "seed"),
    (
        "kink_check",
        _calls(ss.kink_check, objective, theta),
        "radius",
        (-1.0, NAN, INF, "x", True),
        "radius",
    ),
    (
        "kink_check",
        _calls(ss.kink_check, objective, theta),
        "candidates",
        POSITIVE_INT,
        "candidates",
    ),
    ("kink_check", _calls(ss.kink_check, objective, theta), "probes", POSITIVE_INT, "probes"),
    (
        "exact_zero_directions",
        _calls(ss.exact_zero_directions, objective, theta),
        "probes",
        POSITIVE_INT,
        "probes",
    ),
    (
        "slice_1d",
        lambda **kw: ss.slice_1d(objective(), theta(), _unit(), **kw),
        "span",
        POSITIVE,
        "span",
    ),
    (
        "slice_1d",
        lambda **kw: ss.slice_1d(objective(), theta(), _unit(), **kw),
        "num",
        (0, 1, -3, 2.5, True, "51"),
        "num",
    ),
    (
        "slice_2d",
        lambda **kw: ss.slice_2d(objective(), theta(), *_units(), **kw),
        "span",
        POSITIVE,
        "span",
    ),
    ("random_direction", _calls(ss.random_direction, objective, theta), "seed", SEED, "seed"),
    (
        "Tolerance",
        lambda **kw: ss.Tolerance(**{"grad_tol": 1e-8, "rtol": 1e-6, **kw}),
        "grad_tol",
        POSITIVE,
        "grad_tol",
    ),
    (
        "Tolerance",
        lambda **kw: ss.Tolerance(**{"grad_tol": 1e-8, "rtol": 1e-6, **kw}),
        "rtol",
        TOLERANCE,
        "rtol",
    ),
    (
        "Tolerance",
        lambda **kw: ss.Tolerance(**{"grad_tol": 1e-8, "rtol": 1e-6, **kw}),
        "atol",
        NONNEG,
        "atol",
    ),
    ("PerturbedGDOptions", ss.PerturbedGDOptions, "radius", POSITIVE, "radius"),
    ("PerturbedGDOptions", ss.PerturbedGDOptions, "wait", POSITIVE_INT, "wait"),
    ("SaddleFreeNewtonOptions", ss.SaddleFreeNewtonOptions, "damping", POSITIVE, "damping"),
    ("SaddleFreeNewtonOptions", ss.SaddleFreeNewtonOptions, "k", POSITIVE_INT, r"\bk\b"),
    ("CurvatureOptions", ss.CurvatureOptions, "stall_grad_norm", POSITIVE, "stall_grad_norm"),
    (
        "Objective",
        lambda **kw: ss.Objective(*toy.worked_example(), **kw),
        "memory_budget",
        POSITIVE,
        "memory_budget",
    ),
]


def _unit() -> torch.Tensor:
    return torch.tensor([1.0, 0.0], dtype=F64)


def _units() -> tuple[torch.Tensor, torch.Tensor]:
    return _unit(), torch.tensor([0.0, 1.0], dtype=F64)


NUMERIC_CASES = [
    pytest.param(call, arg, value, pattern, id=f"{label}-{arg}={value!r}")
    for label, call, arg, values, pattern in NUMERIC
    for value in values
]


@pytest.mark.parametrize(("call", "arg", "value", "pattern"), NUMERIC_CASES)
def test_a_wrong_number_names_its_argument(call, arg, value, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        call(**{arg: value})


def _vectors() -> dict[str, Any]:
    return {
        "none": None,
        "text": ["a", "b"],
        "string": "0.5 0.1",
        "meta": torch.zeros(2, device="meta"),
        "too-long": torch.zeros(3, dtype=F64),
        "too-short": torch.zeros(1, dtype=F64),
        "matrix": torch.zeros(2, 1, dtype=F64),
        "scalar": torch.tensor(0.5, dtype=F64),
        "complex": torch.zeros(2, dtype=torch.complex128),
        "nested": [[0.5], [0.1]],
    }


THETA_TAKERS: dict[str, Callable[[Any], Any]] = {
    "loss": lambda t: objective().loss(t),
    "grad": lambda t: objective().grad(t),
    "hvp": lambda t: objective().hvp(t, _unit()),
    "hessian": lambda t: objective().hessian(t),
    "classify": lambda t: ss.classify(objective(), t),
    "find_critical_point": lambda t: ss.find_critical_point(objective(), t),
    "hessian_spectrum": lambda t: ss.hessian_spectrum(objective(), t),
    "escape_saddle": lambda t: ss.escape_saddle(objective(), t),
}


@pytest.mark.parametrize("bad", list(_vectors()))
@pytest.mark.parametrize("taker", list(THETA_TAKERS))
def test_a_theta_that_is_not_a_parameter_vector(taker, bad):
    with pytest.raises(InvalidInputError, match=r"θ|theta"):
        THETA_TAKERS[taker](_vectors()[bad])


@pytest.mark.parametrize("taker", list(THETA_TAKERS))
@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_a_non_finite_theta_names_the_parameter(taker, value):
    with pytest.raises(NonFiniteError, match="'w1'"):
        THETA_TAKERS[taker](torch.tensor([value, 0.1], dtype=F64))


def _directions() -> dict[str, Any]:
    return {
        "zero": torch.zeros(2, dtype=F64),
        "nan": torch.tensor([NAN, 1.0], dtype=F64),
        "inf": torch.tensor([INF, 1.0], dtype=F64),
        "wrong-length": torch.ones(3, dtype=F64),
        "none": None,
    }


DIRECTION_TAKERS: dict[str, Callable[[Any], Any]] = {
    "line": lambda d: ss.line(objective(), theta(), d, [0.0, 1.0]),
    "slice_1d": lambda d: ss.slice_1d(objective(), theta(), d),
    "plane-d1": lambda d: ss.plane(objective(), theta(), d, _unit(), [0.0, 1.0], [0.0, 1.0]),
    "plane-d2": lambda d: ss.plane(objective(), theta(), _unit(), d, [0.0, 1.0], [0.0, 1.0]),
    "slice_2d": lambda d: ss.slice_2d(objective(), theta(), d, _unit()),
    "hvp": lambda d: objective().hvp(theta(), d),
}


@pytest.mark.parametrize("bad", list(_directions()))
@pytest.mark.parametrize("taker", list(DIRECTION_TAKERS))
def test_a_direction_that_cannot_be_followed(taker, bad):
    if taker == "hvp" and bad == "zero":
        pytest.skip("H·0 = 0 is a valid product")
    with pytest.raises(SaddlescopeError, match=r"direction|d1|d2|vector|v "):
        DIRECTION_TAKERS[taker](_directions()[bad])


@pytest.mark.parametrize(
    "alphas", [[], [NAN, 1.0], [INF], "x", None, [[0.0, 1.0]]], ids=lambda a: repr(a)
)
def test_line_offsets_must_be_finite_numbers(alphas):
    with pytest.raises(InvalidInputError, match="alphas"):
        ss.line(objective(), theta(), _unit(), alphas)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"method": "bogus"}, "unknown method"),
        ({"method": None}, "unknown method"),
        ({"method": "Newton-MR"}, "unknown method"),
    ],
)
def test_unknown_search_methods(kwargs, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        ss.find_critical_point(objective(), theta(), **kwargs)


@pytest.mark.parametrize("method", ["bogus", "", None, "sfn"])
def test_unknown_escape_methods(method):
    with pytest.raises(InvalidInputError, match="method"):
        ss.escape_saddle(objective(), theta(), method=method)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"which": "middle"}, "which"),
        ({"method": "power"}, "method"),
        ({"lanczos_bound": "tight"}, "lanczos_bound|bound"),
    ],
)
def test_unknown_spectrum_choices(kwargs, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        ss.hessian_spectrum(objective(), theta(), **kwargs)


@pytest.mark.parametrize("which", ["middle", ("most-negative", "sideways"), "", None])
def test_unknown_eigen_directions(which):
    with pytest.raises(InvalidInputError, match=r"which|direction"):
        ss.eigen_directions(objective(), theta(), which)


@pytest.mark.parametrize("variance", ["exact", "", None])
def test_unknown_inertia_variance(variance):
    with pytest.raises(InvalidInputError, match="variance"):
        ss.estimate_inertia(operator(), variance=variance)


def _model_data() -> tuple[nn.Module, nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    return (
        nn.Linear(3, 1).double(),
        nn.MSELoss(),
        (torch.randn(8, 3, dtype=F64), torch.randn(8, 1, dtype=F64)),
    )


class _TupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1).double()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.lin(x), x


def _objective_cases() -> list[Any]:
    model, loss, (x, y) = _model_data()
    cases: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
        ("dtype-int", lambda: ss.Objective(model, loss, (x, y), dtype=torch.int64), "dtype"),
        ("dtype-name", lambda: ss.Objective(model, loss, (x, y), dtype="int8"), "dtype"),
        ("dtype-number", lambda: ss.Objective(model, loss, (x, y), dtype=64), "dtype"),
        ("device-unknown", lambda: ss.Objective(model, loss, (x, y), device="gpu7"), "device"),
        ("device-meta", lambda: ss.Objective(model, loss, (x, y), device="meta"), "meta"),
        ("device-number", lambda: ss.Objective(model, loss, (x, y), device=3.5), "device"),
        ("model-meta", lambda: ss.Objective(nn.Linear(3, 1, device="meta"), loss, (x, y)), "meta"),
        ("model-not-module", lambda: ss.Objective(lambda t: t, loss, (x, y)), "nn.Module|model"),
        ("loss-not-callable", lambda: ss.Objective(model, "mse", (x, y)), "loss_fn"),
        (
            "loss-sum",
            lambda: ss.Objective(model, nn.MSELoss(reduction="sum"), (x, y)),
            "per-sample mean",
        ),
        (
            "loss-none-reduction",
            lambda: ss.Objective(model, nn.MSELoss(reduction="none"), (x, y)),
            "scalar",
        ),
        ("targets-flat", lambda: ss.Objective(model, loss, (x, y[:, 0])), "shape"),
        (
            "targets-wide",
            lambda: ss.Objective(model, loss, (x, torch.randn(8, 2, dtype=F64))),
            "shape",
        ),
        ("targets-nan", lambda: ss.Objective(model, loss, (x, torch.full_like(y, NAN))), "targets"),
        ("inputs-inf", lambda: ss.Objective(model, loss, (torch.full_like(x, INF), y)), "inputs"),
        ("inputs-wrong-width", lambda: ss.Objective(model, loss, (x[:, :2], y)), "first batch"),
        ("tuple-output", lambda: ss.Objective(_TupleOut(), loss, (x, y)), "first batch"),
        ("data-empty", lambda: ss.Objective(model, loss, []), "data|batch"),
        ("data-none", lambda: ss.Objective(model, loss, None), "data|batch"),
        ("data-string", lambda: ss.Objective(model, loss, "train.csv"), "data|batch"),
        ("batch-weight", lambda: ss.Objective(model, loss, (x, y), batch_weight=3), "batch_weight"),
        (
            "norm-stats",
            lambda: ss.Objective(model, loss, (x, y), norm_stats="frozen"),
            "norm_stats",
        ),
        (
            "param-filter-unknown",
            lambda: ss.Objective(model, loss, (x, y), param_filter=["nope"]),
            "nope",
        ),
        ("param-filter-empty", lambda: ss.Objective(model, loss, (x, y), param_filter=[]), "param"),
        ("hold-data", lambda: ss.Objective(model, loss, (x, y), hold_data="yes"), "hold_data"),
        (
            "per-sample-mean",
            lambda: ss.Objective(model, loss, (x, y), per_sample_mean="yes"),
            "per_sample_mean",
        ),
        (
            "no-trainable",
            lambda: ss.Objective(model.requires_grad_(False), loss, (x, y)),
            "trainable",
        ),
    ]
    return [pytest.param(call, pattern, id=label) for label, call, pattern in cases]


@pytest.mark.parametrize(("call", "pattern"), _objective_cases())
def test_an_objective_that_cannot_be_built(call, pattern):
    with pytest.raises(SaddlescopeError, match=pattern):
        call()


@pytest.mark.parametrize(
    ("matrix", "pattern"),
    [
        (torch.zeros(2, 3, dtype=F64), "square"),
        (torch.zeros(2, dtype=F64), "square|2-D"),
        (torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=F64), "symmetric"),
        (torch.tensor([[NAN, 0.0], [0.0, 1.0]], dtype=F64), "NaN|finite"),
        ("eye", "tensor|matrix"),
    ],
)
def test_matrices_that_are_not_hessians(matrix, pattern):
    with pytest.raises(SaddlescopeError, match=pattern):
        ss.spectrum_from_matrix(matrix)


@pytest.mark.parametrize(
    ("source", "pattern"),
    [(None, "source|operator"), ("H", "source|operator"), (torch.zeros(3), "square|operator")],
)
def test_sources_that_are_not_operators(source, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        ss.as_operator(source)


@pytest.mark.parametrize("n", [0, -1, 2.5, True])
def test_callable_operator_sizes(n):
    with pytest.raises(InvalidInputError, match=r"\bn\b"):
        ss.CallableOperator(lambda v: v, n)
