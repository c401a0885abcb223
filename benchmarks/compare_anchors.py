"""The solvers compared by ``benchmarks.compare``: saddlescope and three anchors, one interface.

Each solver takes a :class:`Problem` (a float32 model, a loss and one full batch of data) and a
budget, builds whatever it needs from scratch (the timed cost includes the set-up: an
``Objective`` and its operator, PyHessian's graph, an anchor's operator), and returns the
eigenvalue estimates with the number of Hessian-vector products spent. The anchors are used
through their public APIs as installed; nothing of theirs is copied here.

* **PyHessian** (``pyhessian``): power iteration with deflation, ``hessian(...).eigenvalues``;
  the budget is ``maxIter`` (per eigenvalue) with ``tol=0`` so that the budget is what runs. Its
  HVP reuses one gradient graph built at construction (``create_graph=True``). It has no
  smallest-eigenvalue method: for the most negative eigenvalue we run power iteration on the
  shifted operator s·I − H with PyHessian's own HVP and vector helpers (s = PyHessian's top
  eigenvalue at its default settings, whose cost is counted).
* **hessian-eigenthings** (``hessian_eigenthings``): ``lanczos(HessianOperator, which="LA"|"SA")``;
  the budget is ``max_iter`` (exactly the number of HVPs; the library re-orthogonalises by
  default only when ``max_iter <= 50``). Every HVP is a fresh double backward.
* **curvlinops** (``curvlinops``): ``HessianLinearOperator(...).to_scipy()`` handed to SciPy's
  ``eigsh`` (which="LA"|"SA"), the route its documentation takes for eigenvalues; the budget is
  eigsh's ``tol``. Its HVP is forward-over-reverse (``jvp`` of ``jacrev``) recomputed per product.
  Built with ``check_deterministic=False`` and ``num_data`` given (its safety probe costs two
  extra passes over the data and is not part of an eigenvalue computation).
* **saddlescope**: ``hessian_spectrum(method="lanczos", lanczos_tol=...)`` (torch Lanczos that
  stops at an achieved relative residual; ``lanczos_bound="gap"``: at the eigenvalue error
  estimate min(r, r²/gap)) and ``method="arpack"`` (SciPy eigsh on our cached-graph HVP).
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.metadata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh
from torch import Tensor, nn

from saddlescope import Objective, hessian_spectrum

TARGETS = ("top1", "top5", "smallest")  # largest k=1, largest k=5, smallest (most negative) k=1


@dataclass
class Problem:
    """One model on one full batch: what every solver is given."""

    key: str
    title: str
    model: nn.Module  # float32, never modified (every solver works on its own copy)
    x: Tensor
    y: Tensor
    loss_fn: nn.Module = field(default_factory=nn.CrossEntropyLoss)
    seed: int = 0  # the start-vector seed every solver uses (set by the benchmark driver)

    @property
    def num_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    @property
    def num_samples(self) -> int:
        return int(self.x.shape[0])

    def fresh_model(self) -> nn.Module:
        model = copy.deepcopy(self.model)
        model.eval()
        for p in model.parameters():
            p.grad = None
        return model

    def objective(self, dtype: torch.dtype = torch.float32) -> Objective:
        return Objective(self.model, self.loss_fn, (self.x, self.y), dtype=dtype)


@dataclass
class Estimate:
    eigenvalues: np.ndarray  # ascending
    hvps: int
    note: str = ""


def k_of(target: str) -> int:
    return 5 if target == "top5" else 1


def which_of(target: str) -> str:
    return "smallest" if target == "smallest" else "largest"


def _ascending(values: Any) -> np.ndarray:
    return np.sort(np.asarray(torch.as_tensor(values).detach().cpu(), dtype=np.float64).ravel())


# ----------------------------------------------------------------------------------- solvers
@dataclass
class Solver:
    """A named eigenvalue method with a ladder of budgets, loosest (cheapest) first."""

    key: str
    label: str
    package: str  # "saddlescope" or the anchor's distribution name
    budget_name: str
    ladders: dict[str, list[Any]]
    run: Callable[[Problem, str, Any], Estimate]
    notes: dict[str, str] = field(default_factory=dict)

    def ladder(self, target: str) -> list[Any]:
        return self.ladders.get(target, [])


TOL_LADDER = [3e-1, 1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4, 1e-5, 1e-6]
EIGSH_TOL_LADDER = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4, 1e-5, 1e-6, 1e-8]
POWER_LADDER = [10, 20, 40, 80, 160, 320, 640, 1280]
LANCZOS_STEPS_LADDER = [3, 5, 8, 10, 15, 20, 30, 40, 50, 70, 100, 150, 200, 300]


def _saddlescope(method: str, bound: str = "residual") -> Callable[[Problem, str, Any], Estimate]:
    def run(problem: Problem, target: str, tol: float) -> Estimate:
        obj = problem.objective()
        s = hessian_spectrum(
            obj,
            obj.theta0,
            k=k_of(target),
            which=which_of(target),  # type: ignore[arg-type]
            method=method,  # type: ignore[arg-type]
            lanczos_tol=tol,
            lanczos_bound=bound,  # type: ignore[arg-type]
            eigenvectors=False,
            seed=problem.seed,
        )
        return Estimate(_ascending(s.eigenvalues), s.hvps, "" if s.converged else "not converged")

    return run


def saddlescope_solvers() -> list[Solver]:
    every = dict.fromkeys(TARGETS)
    return [
        Solver(
            "saddlescope-lanczos",
            "saddlescope lanczos",
            "saddlescope",
            "lanczos_tol",
            {t: TOL_LADDER for t in every},
            _saddlescope("lanczos"),
        ),
        Solver(
            "saddlescope-lanczos-gap",
            "saddlescope lanczos (gap)",
            "saddlescope",
            "lanczos_tol",
            {t: TOL_LADDER for t in every},
            _saddlescope("lanczos", "gap"),
        ),
        Solver(
            "saddlescope-arpack",
            "saddlescope arpack (eigsh)",
            "saddlescope",
            "tol",
            {t: EIGSH_TOL_LADDER for t in every},
            _saddlescope("arpack"),
            notes={
                "top1": "+1 LM eigsh at tol 1e-4 for the scale",
                "top5": "+1 LM eigsh at tol 1e-4 for the scale",
                "smallest": "+1 LM eigsh at tol 1e-4 for the scale",
            },
        ),
    ]


# ------------------------------------------------------------------------------ PyHessian
@contextlib.contextmanager
def _count_pyhessian_hvps() -> Iterator[list[int]]:
    """Count calls of PyHessian's ``hessian_vector_product`` (wrapped in place, then restored)."""
    mod = importlib.import_module("pyhessian.hessian")  # the module, not the class it exports
    original = mod.hessian_vector_product
    count = [0]

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return original(*args, **kwargs)

    mod.hessian_vector_product = counted
    try:
        yield count
    finally:
        mod.hessian_vector_product = original


def pyhessian_build(problem: Problem) -> Any:
    from pyhessian import hessian

    cuda = problem.x.is_cuda
    return hessian(problem.fresh_model(), problem.loss_fn, data=(problem.x, problem.y), cuda=cuda)


def pyhessian_top(problem: Problem, k: int, max_iter: int, tol: float) -> Estimate:
    torch.manual_seed(problem.seed)  # PyHessian draws its start vectors from the global generator
    with _count_pyhessian_hvps() as count:
        h = pyhessian_build(problem)
        values, _ = h.eigenvalues(maxIter=max_iter, tol=tol, top_n=k)
    return Estimate(_ascending(values), count[0])


def pyhessian_smallest(problem: Problem, max_iter: int) -> Estimate:
    """Power iteration on s·I − H with PyHessian's HVP (s: its own top eigenvalue, defaults)."""
    from pyhessian.utils import group_product, hessian_vector_product, normalization

    torch.manual_seed(problem.seed)
    with _count_pyhessian_hvps() as count:
        h = pyhessian_build(problem)
        (shift,), _ = h.eigenvalues()  # its defaults: maxIter=100, tol=1e-3
    hvps = count[0]
    v = normalization([torch.randn_like(p) for p in h.params])
    mu = 0.0
    for _ in range(max_iter):
        hv = hessian_vector_product(h.gradsH, h.params, v)
        w = [shift * vi - hvi for vi, hvi in zip(v, hv)]
        mu = float(group_product(w, v))
        v = normalization(w)
        hvps += 1
    return Estimate(np.array([shift - mu]), hvps, f"shift s={shift:.4g} (its top-1, defaults)")


def pyhessian_solvers() -> list[Solver]:
    def run(problem: Problem, target: str, max_iter: int) -> Estimate:
        if target == "smallest":
            return pyhessian_smallest(problem, max_iter)
        return pyhessian_top(problem, k_of(target), max_iter, tol=0.0)

    def run_default(problem: Problem, target: str, _: Any) -> Estimate:
        return pyhessian_top(problem, k_of(target), 100, 1e-3)

    return [
        Solver(
            "pyhessian-power",
            "PyHessian power iteration",
            "pyhessian",
            "maxIter",
            {t: POWER_LADDER for t in TARGETS},
            run,
            notes={
                "top5": "deflated; maxIter per eigenvalue",
                "smallest": "spectral shift s·I−H, our loop on its HVP",
            },
        ),
        Solver(
            "pyhessian-default",
            "PyHessian defaults",
            "pyhessian",
            "",
            {"top1": ["maxIter=100,tol=1e-3"], "top5": ["maxIter=100,tol=1e-3"]},
            run_default,
            notes={
                "top1": "tol = change between iterations",
                "top5": "top_n=5",
            },
        ),
    ]


# ------------------------------------------------------------------------ hessian-eigenthings
def eigenthings_operator(problem: Problem) -> Any:
    import hessian_eigenthings as he

    return he.HessianOperator(
        problem.fresh_model(), [(problem.x, problem.y)], he.supervised_loss(problem.loss_fn)
    )


def eigenthings_solvers() -> list[Solver]:
    def run(problem: Problem, target: str, max_iter: int) -> Estimate:
        import hessian_eigenthings as he

        op = eigenthings_operator(problem)
        which = "SA" if target == "smallest" else "LA"
        res = he.lanczos(op, k=k_of(target), max_iter=max_iter, which=which, seed=problem.seed)
        note = "" if max_iter <= 50 else "no reorth. (its default > 50 steps)"
        return Estimate(_ascending(res.eigenvalues), int(res.iterations), note)

    return [
        Solver(
            "eigenthings-lanczos",
            "hessian-eigenthings lanczos",
            "hessian-eigenthings",
            "max_iter",
            {t: [m for m in LANCZOS_STEPS_LADDER if m >= k_of(t)] for t in TARGETS},
            run,
        )
    ]


# ----------------------------------------------------------------------------------- curvlinops
def curvlinops_operator(problem: Problem) -> Any:
    from curvlinops import HessianLinearOperator

    model = problem.fresh_model()
    params = [p for p in model.parameters() if p.requires_grad]
    return HessianLinearOperator(
        model,
        problem.loss_fn,
        params,
        [(problem.x, problem.y)],
        check_deterministic=False,
        num_data=problem.num_samples,
    )


def curvlinops_solvers() -> list[Solver]:
    def run(problem: Problem, target: str, tol: float) -> Estimate:
        scipy_op = curvlinops_operator(problem).to_scipy()  # its default: float64 for ARPACK
        count = [0]

        def matvec(v: np.ndarray) -> np.ndarray:
            count[0] += 1
            return scipy_op.matvec(v)

        counted = LinearOperator(scipy_op.shape, matvec=matvec, dtype=scipy_op.dtype)
        v0 = np.random.default_rng(problem.seed).standard_normal(scipy_op.shape[0])
        which = "SA" if target == "smallest" else "LA"
        try:
            values = eigsh(
                counted, k=k_of(target), which=which, tol=tol, v0=v0, return_eigenvectors=False
            )
            note = ""
        except ArpackNoConvergence as err:
            values, note = err.eigenvalues, "ARPACK: no convergence"
        return Estimate(_ascending(values), count[0], note)

    return [
        Solver(
            "curvlinops-eigsh",
            "curvlinops + scipy eigsh",
            "curvlinops-for-pytorch",
            "tol",
            {t: EIGSH_TOL_LADDER for t in TARGETS},
            run,
            notes={t: "ARPACK in float64 (to_scipy default)" for t in TARGETS},
        )
    ]


# ------------------------------------------------------------------------------ availability
ANCHORS = {
    "pyhessian": ("pyhessian", "PyHessian", pyhessian_solvers),
    "hessian-eigenthings": ("hessian_eigenthings", "hessian-eigenthings", eigenthings_solvers),
    "curvlinops-for-pytorch": ("curvlinops", "curvlinops", curvlinops_solvers),
}


@dataclass
class AnchorStatus:
    distribution: str
    label: str
    version: str | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


def anchor_status() -> dict[str, AnchorStatus]:
    """Import every anchor; one that is missing or fails to import is reported, not fatal."""
    out = {}
    for dist, (module, label, _) in ANCHORS.items():
        try:
            version: str | None = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = AnchorStatus(dist, label, None, "not installed (pip install .[bench])")
            continue
        try:
            importlib.import_module(module)
        except Exception as err:  # an anchor that fails to import is skipped, whatever the cause
            out[dist] = AnchorStatus(dist, label, version, f"import failed: {err!r}"[:160])
            continue
        out[dist] = AnchorStatus(dist, label, version, None)
    return out


def all_solvers(status: dict[str, AnchorStatus]) -> list[Solver]:
    solvers = saddlescope_solvers()
    for dist, (_, _, make) in ANCHORS.items():
        if status[dist].ok:
            solvers += make()
    return solvers


# ------------------------------------------------------------------------------- single HVPs
def hvp_functions(problem: Problem, status: dict[str, AnchorStatus]) -> dict[str, Any]:
    """label -> (set-up callable returning ``v ↦ H·v`` on flat float32 vectors, description)."""

    def ours() -> Callable[[Tensor], Tensor]:
        obj = problem.objective()
        op = obj.hessian_operator(obj.theta0)
        return lambda v: op @ v

    out: dict[str, Any] = {
        "saddlescope": (ours, "cached gradient graph, reverse-over-reverse; set-up: Objective + op")
    }

    def split(model: nn.Module, v: Tensor) -> list[Tensor]:
        shapes = [p.shape for p in model.parameters() if p.requires_grad]
        chunks = torch.split(v, [s.numel() for s in shapes])
        return [c.view(s) for c, s in zip(chunks, shapes)]

    if status["pyhessian"].ok:

        def pyh() -> Callable[[Tensor], Tensor]:
            from pyhessian.utils import hessian_vector_product

            h = pyhessian_build(problem)
            return lambda v: torch.cat(
                [
                    t.reshape(-1)
                    for t in hessian_vector_product(h.gradsH, h.params, split(h.model, v))
                ]
            )

        out["PyHessian"] = (pyh, "cached gradient graph (backward(create_graph=True) at set-up)")
    if status["hessian-eigenthings"].ok:

        def eig() -> Callable[[Tensor], Tensor]:
            op = eigenthings_operator(problem)
            return op.matvec

        out["hessian-eigenthings"] = (eig, "fresh double backward per product")
    if status["curvlinops-for-pytorch"].ok:

        def curv() -> Callable[[Tensor], Tensor]:
            op = curvlinops_operator(problem)
            return lambda v: op @ v

        out["curvlinops"] = (curv, "fresh forward-over-reverse (jvp of jacrev) per product")
    return out
