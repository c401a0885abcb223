"""One run of a study: build the model from its seed → train → find a critical point → classify.

:func:`run_one` is a pure function of its :class:`~saddlescope.survey.config.RunSpec`: it seeds
its own generators, runs torch on one thread and restores the caller's RNG state, so a record is
bit-for-bit the same in any process, with any number of workers, on any backend.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import nn

from saddlescope.classify import CriticalPoint, classify
from saddlescope.data import Dataset, load_dataset
from saddlescope.errors import InvalidInputError
from saddlescope.models import mlp
from saddlescope.objective import Objective
from saddlescope.precision import float32_twin
from saddlescope.runtime import one_thread
from saddlescope.search import CriticalPointSearch, find_critical_point
from saddlescope.survey.config import DataConfig, RunSpec, TrainConfig
from saddlescope.survey.record import SurveyRecord, library_versions
from saddlescope.survey.source_protocol import gradnorm_phase, naive_ratios

__all__ = ["RunFailure", "attempt", "objective_for", "run_one", "train", "trained_objective"]


@lru_cache(maxsize=8)
def _dataset(cfg: DataConfig) -> Dataset:
    return load_dataset(
        cfg.name,
        n_samples=cfg.n_samples,
        seed=cfg.seed,
        classes=cfg.classes,
        pool=cfg.pool,
        d_in=cfg.d_in,
        teacher_hidden=cfg.teacher_hidden,
        d_out=cfg.d_out,
        noise=cfg.noise,
    )


def train(model: nn.Module, data: Dataset, cfg: TrainConfig, steps: int, seed: int) -> float:
    """Train ``model`` in place on squared error for ``steps`` steps; return the final full loss.

    Args:
        model: the model (changed in place).
        data: the dataset.
        cfg: the optimizer, learning rate and batch size.
        steps: training steps (L-BFGS: iterations of one call).
        seed: seeds the minibatch order.
    """
    params = list(model.parameters())
    x, y = data.inputs.to(params[0].device), data.targets.to(params[0].device)
    if cfg.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(params, lr=cfg.lr)
    elif cfg.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg.lr)
    else:
        opt = torch.optim.LBFGS(
            params, lr=cfg.lr, max_iter=max(steps, 1), line_search_fn="strong_wolfe"
        )
    n = x.shape[0]
    batch = cfg.batch_size if 0 < cfg.batch_size < n else n
    if cfg.optimizer == "lbfgs":
        steps, batch = min(steps, 1), n  # one call runs max_iter iterations on the full batch
    batches = _minibatches(n, batch, torch.Generator().manual_seed(seed))
    for _, idx in zip(range(steps), batches):

        def closure(idx: torch.Tensor = idx) -> torch.Tensor:
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x[idx]), y[idx])
            loss.backward()
            return loss

        opt.step(closure)  # type: ignore[arg-type]  # torch stubs: a closure returns float
    with torch.no_grad():
        return float(nn.functional.mse_loss(model(x), y))


def _minibatches(n: int, batch: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches forever: the full set, or a fresh seeded permutation per epoch."""
    while True:
        if batch >= n:
            yield torch.arange(n)
            continue
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n - batch + 1, batch):
            yield perm[start : start + batch]


def _model(spec: RunSpec, data: Dataset) -> nn.Module:
    return mlp(
        data.num_features, spec.hidden, data.num_outputs, activation=spec.activation, seed=spec.seed
    )


def _objective(spec: RunSpec, data: Dataset, model: nn.Module) -> Objective:
    return Objective(
        model,
        nn.MSELoss(),
        (data.inputs, data.targets),
        dtype=torch.float64,
        device=spec.device,
        memory_budget=spec.spectrum.memory_budget,
    )


def objective_for(spec: RunSpec) -> Objective:
    """The run's objective (its model family member on its data), to re-analyse a stored θ.

    Args:
        spec: the run.
    """
    data = _dataset(spec.data)
    return _objective(spec, data, _model(spec, data))


def trained_objective(spec: RunSpec) -> Objective:
    """The run's objective, its θ0 where the run's training stopped (as :func:`run_one` has it).

    Args:
        spec: the run.
    """
    with torch.random.fork_rng(devices=[]), one_thread():
        return _trained(spec)[0]


def _trained(spec: RunSpec) -> tuple[Objective, float]:
    """(objective at the trained θ, final training loss); seeds torch's global generator."""
    torch.manual_seed(spec.seed)
    data = _dataset(spec.data)
    model = _model(spec, data).to(spec.device)
    loss_trained = train(model, data, spec.train, spec.train_steps, spec.seed)
    return _objective(spec, data, model), loss_trained


@dataclass(frozen=True)
class RunFailure:
    """A run that raised on every attempt: stored as failed, so the study goes on.

    Attributes:
        run_id: the run's id.
        error: the last attempt's error, "Type: message".
        attempts: how many times it was tried.
    """

    run_id: str
    error: str
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        """The fields by name."""
        return asdict(self)

    def __str__(self) -> str:
        return f"run {self.run_id} failed after {self.attempts} attempts: {self.error}"


def attempt(spec: RunSpec, tries: int = 2) -> SurveyRecord | RunFailure:
    """:func:`run_one`, tried again once if it raises; a :class:`RunFailure` if it always does.

    Args:
        spec: the run.
        tries: attempts in all (default 2: the run, and one retry).
    """
    error = ""
    for _ in range(tries):
        try:
            return run_one(spec)
        except Exception as err:
            error = f"{type(err).__name__}: {err}"[:2000]
    return RunFailure(spec.run_id, error, tries)


def run_one(spec: RunSpec) -> SurveyRecord:
    """Run one (model, training steps, seed) of a study and return its record.

    Args:
        spec: the run; the record depends on nothing else (seeds, threads and RNG state are
            its own).
    """
    tol = spec.tolerance
    with torch.random.fork_rng(devices=[]), one_thread():
        t0 = time.perf_counter()
        obj, loss_trained = _trained(spec)
        start, naive = obj.theta0, None
        if spec.search.gradnorm_phase:
            start = gradnorm_phase(obj, start, spec.search.gradnorm_phase, spec.train.lr)
            naive = naive_ratios(obj, float32_twin(obj), start)
        t1 = time.perf_counter()
        search = find_critical_point(
            obj,
            start,
            method=spec.search.method,  # type: ignore[arg-type]
            grad_tol=tol.grad_tol,
            max_steps=spec.search.max_steps,
            max_hvps=spec.search.max_hvps or None,
            rtol=tol.rtol,
            atol=tol.atol,
        )
        t2 = time.perf_counter()
        cp = classify(
            obj,
            search.theta,
            grad_tol=tol.grad_tol,
            rtol=tol.rtol,
            atol=tol.atol,
            loss_lower_bound=spec.spectrum.loss_lower_bound,
            max_dense_seconds=math.inf,  # the full spectrum whenever it fits: same on any machine
            seed=spec.seed,
        )
        t3 = time.perf_counter()
    if cp.inertia is None or cp.inertia.estimated:
        raise InvalidInputError(
            f"run {spec.run_id}: only extreme eigenvalues were computed ({obj.num_params} "
            "parameters over "
            "spectrum.memory_budget); the survey needs the full spectrum"
        )
    evidence = _evidence(search) | ({} if naive is None else {"naive": naive})
    return _record(spec, search, cp, loss_trained, (t1 - t0, t2 - t1, t3 - t2), evidence)


def _array(x: torch.Tensor | None) -> np.ndarray | None:
    return None if x is None else x.detach().cpu().numpy().astype(np.float64)


def _record(
    spec: RunSpec,
    search: CriticalPointSearch,
    cp: CriticalPoint,
    loss_trained: float,
    seconds: tuple[float, float, float],
    evidence: dict[str, Any],
) -> SurveyRecord:
    assert cp.inertia is not None
    eigenvalues, theta = _array(cp.spectrum.eigenvalues), _array(search.theta)
    assert eigenvalues is not None and theta is not None
    curvature = cp.escape_curvature
    return SurveyRecord(
        spec=spec,
        num_params=int(theta.size),
        loss_trained=loss_trained,
        loss_critical=cp.loss,
        grad_norm=cp.grad_norm,
        converged=search.converged,
        gradient_flat=search.gradient_flat,
        status=search.status,
        search_steps=search.steps,
        hvps=search.hvps + cp.spectrum.hvps,
        flatness=None if search.flatness is None else search.flatness.share,
        kind=cp.kind,
        strict=cp.strict,
        tolerance=cp.tolerance,
        threshold=cp.threshold,
        inertia=cp.inertia,
        eigenvalues=eigenvalues,
        theta=theta,
        escape_direction=_array(cp.escape_direction),
        escape_curvature=None if curvature is None else float(curvature),
        seconds_train=seconds[0],
        seconds_search=seconds[1],
        seconds_spectrum=seconds[2],
        versions=library_versions(),
        search=evidence,
    )


def _evidence(search: CriticalPointSearch) -> dict[str, Any]:
    """The search's evidence as plain values (see :attr:`SurveyRecord.search`)."""
    return {
        "phases": [list(p) for p in search.phases],
        "crossings": search.crossings,
        "flatness": None if search.flatness is None else search.flatness.to_dict(),
        "kink": None if search.kink is None else search.kink.to_dict(),
    }
