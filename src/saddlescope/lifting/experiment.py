"""The dimension effect, run end to end on a small tanh MLP (``saddlescope lift``).

A strict minimum of the narrow net (:func:`train_strict_minimum`), its split points for several
λ (observed against predicted inertia), and the way out of one of those saddles to a loss strictly
below the narrow minimum (:func:`lift_experiment`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor, nn

from saddlescope.checks import check_int, check_positive
from saddlescope.classify import CriticalPoint, classify
from saddlescope.errors import InvalidInputError, SaddlescopeError
from saddlescope.lifting.layout import check_ratio
from saddlescope.lifting.report import EscapeRecord, LiftReport, SplitRow
from saddlescope.lifting.split import inertia_of, predicted_inertia, split_blocks
from saddlescope.lifting.subspace import restrict
from saddlescope.lifting.views import module_at, split_coordinates, split_objective, split_theta
from saddlescope.negative_curvature import curvature_step
from saddlescope.objective import Objective
from saddlescope.runtime import one_thread
from saddlescope.search import find_critical_point

__all__ = ["NarrowMinimum", "lift_experiment", "train_strict_minimum"]

#: ‖∇L‖ the narrow minimum is polished to: far below the float64 default, so that its split points
#: (whose gradient grows with |λ|) stay critical and C_j·v_j = ∂L/∂w_j ≈ 0 in the prediction.
NARROW_GRAD_TOL = 1e-10
#: A loss at or below this is an interpolating fit, not the strict local minimum the story needs.
ZERO_LOSS = 1e-12


def _lbfgs(obj: Objective, theta: Tensor, max_iter: int) -> tuple[Tensor, int]:
    """Full-batch L-BFGS (strong Wolfe) from θ: (last iterate, loss evaluations)."""
    p = theta.detach().clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [p],
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-12,  # stop on max_iter or a stalled line search, not early
        tolerance_change=1e-16,
    )

    evaluations = 0

    def closure() -> Tensor:
        nonlocal evaluations
        evaluations += 1
        value, g = obj.loss_and_grad(p.detach())
        p.grad = g
        return value

    opt.step(closure)
    return p.detach().clone(), evaluations


@dataclass(frozen=True, eq=False)
class NarrowMinimum:
    """A strict local minimum of a small tanh MLP, and the seed that gave it.

    Attributes:
        objective: the narrow network's objective (float64).
        model: a copy of the network at the minimum.
        critical_point: the verdict there (a strict minimum).
        seed: the model seed that reached it.
        seeds_tried: how many seeds were tried.
    """

    objective: Objective
    model: nn.Sequential
    critical_point: CriticalPoint
    seed: int
    seeds_tried: int

    @property
    def theta(self) -> Tensor:
        """The flat parameters at the minimum."""
        return self.critical_point.theta

    @property
    def widths(self) -> tuple[int, ...]:
        """Layer widths, input to output (e.g. (2, 2, 1))."""
        linears = [m for m in self.model if isinstance(m, nn.Linear)]
        return (linears[0].in_features, *(m.out_features for m in linears))

    def to_dict(self) -> dict[str, Any]:
        """Widths, seeds, the objective's description and the verdict."""
        return {
            "widths": list(self.widths),
            "seed": self.seed,
            "seeds_tried": self.seeds_tried,
            "objective": self.objective.describe(),
            "critical_point": self.critical_point.to_dict(),
        }

    def __str__(self) -> str:
        cp = self.critical_point
        strict = "strict " if cp.strict else ""
        arch = "-".join(map(str, self.widths))
        return (
            f"NarrowMinimum: {strict}{cp.kind} of an MLP {arch} "
            f"({self.objective.num_params} params, {self.objective.num_samples} samples), "
            f"loss {cp.loss:.6g}, ‖g‖ {cp.grad_norm:.2g}, λ_min(H) {cp.spectrum.min:.3g} "
            f"(tol {cp.threshold:.2g}); seed {self.seed} ({self.seeds_tried} tried)"
        )


def _narrow_data(
    dataset: str, n_samples: int, data_seed: int, noise: float, width: int, d_out: int
) -> tuple[Tensor, Tensor]:
    """(inputs, targets) of the narrow problem; the teacher is wider than the student."""
    from saddlescope.data import load_dataset

    if dataset == "teacher-student":
        data = load_dataset(
            dataset,
            n_samples=n_samples,
            seed=data_seed,
            d_in=2,
            teacher_hidden=width + 2,
            d_out=d_out,
            noise=noise,
        )
    elif dataset == "sinc":
        data = load_dataset(dataset, n_samples=n_samples, seed=data_seed, noise=noise)
    else:
        raise InvalidInputError(f"unknown dataset {dataset!r}; choose 'teacher-student' or 'sinc'")
    return data.inputs, data.targets


def _try_seed(
    data: tuple[Tensor, Tensor], widths: tuple[int, ...], seed: int, steps: int, rtol: float | None
) -> tuple[Objective, CriticalPoint] | None:
    """Train one seed (L-BFGS, then LM) and classify; None unless a strict, nonzero minimum."""
    from saddlescope.models import mlp

    model = mlp(data[0].shape[1], list(widths), data[1].shape[1], seed=seed)
    obj = Objective(model, nn.MSELoss(), data, dtype=torch.float64)
    with one_thread():
        theta, _ = _lbfgs(obj, obj.theta0, steps)
        search = find_critical_point(obj, theta, method="lm", grad_tol=NARROW_GRAD_TOL)
        if not search.converged:
            return None
        cp = classify(obj, search.theta, rtol=rtol, max_dense_seconds=math.inf)
    inertia = cp.inertia
    if cp.kind != "minimum" or not cp.strict or inertia is None or inertia.n_zero != 0:
        return None
    return (obj, cp) if cp.loss > ZERO_LOSS else None


def train_strict_minimum(
    *,
    dataset: str = "teacher-student",
    hidden: tuple[int, ...] | int = 2,
    n_samples: int = 40,
    seed: int = 0,
    max_seeds: int = 8,
    data_seed: int = 0,
    noise: float = 0.1,
    d_out: int = 1,
    train_steps: int = 400,
    rtol: float | None = None,
) -> NarrowMinimum:
    """Train tanh MLPs (seeds ``seed``, ``seed``+1, …) until one reaches a strict local minimum.

    Each try: L-BFGS on the MSE from ``mlp(..., seed=s)``, then Levenberg–Marquardt to
    ‖g‖ ≤ :data:`NARROW_GRAD_TOL`, then :func:`~saddlescope.classify`: accepted when every
    Hessian eigenvalue is positive beyond the tolerance and the loss is not zero. Float64,
    deterministic.

    Args:
        dataset: ``teacher-student`` (2 inputs, ``d_out`` outputs, a teacher with (last hidden
            width + 2) tanh units, so that the student cannot fit it) or ``sinc``.
        hidden: the hidden widths (an int is one hidden layer).
        n_samples: the number of samples.
        seed: the first model seed tried.
        max_seeds: how many seeds to try.
        data_seed: the data's seed.
        noise: the standard deviation of the Gaussian noise on the targets.
        d_out: the teacher's outputs (``teacher-student`` only).
        train_steps: L-BFGS's iterations per try.
        rtol: the relative eigenvalue tolerance of the verdict (default
            :func:`~saddlescope.default_rtol` of float64).

    Raises:
        SaddlescopeError: no seed in range gives a strict minimum with nonzero loss.
    """
    widths = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    if not widths or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise InvalidInputError(f"hidden must be positive integer widths, got {hidden!r}")
    check_int("max_seeds", max_seeds, 1)
    check_positive("noise", noise, allow_zero=True)
    data = _narrow_data(dataset, n_samples, data_seed, noise, widths[-1], d_out)
    for s in range(seed, seed + max_seeds):
        found = _try_seed(data, widths, s, train_steps, rtol)
        if found is not None:
            obj, cp = found
            trained = cast(nn.Sequential, module_at(obj, cp.theta))
            return NarrowMinimum(obj, trained, cp, s, s - seed + 1)
    raise SaddlescopeError(
        f"no strict local minimum with nonzero loss from seeds {seed}…{seed + max_seeds - 1} "
        f"({dataset}, hidden {widths}); try more seeds (max_seeds) or other data"
    )


def _escape(obj: Objective, cp: CriticalPoint) -> tuple[float, float, Tensor]:
    """The negative-curvature step of :func:`~saddlescope.curvature_step`: (length, loss, θ)."""
    u, curv = cp.escape_direction, cp.escape_curvature
    if u is None or curv is None:
        raise SaddlescopeError("the point has no negative-curvature direction to escape along")
    theta, value, _ = curvature_step(obj, cp.theta, u, curv, cp.loss)
    if not value < cp.loss:
        raise SaddlescopeError("no step along the escape direction lowered the loss")
    return float(torch.linalg.vector_norm(theta - cp.theta)), value, theta


@dataclass(frozen=True)
class _Saddle:
    """A split point that is a saddle: its unit, λ and verdict."""

    unit: int
    ratio: float
    point: CriticalPoint


def _split_rows(
    narrow: NarrowMinimum, wide: Objective, ratios: list[float], rtol: float | None
) -> tuple[list[tuple[float, ...]], list[SplitRow], list[_Saddle]]:
    """For each unit j: eig B_j, and each λ's classified split row; the saddles among them."""
    obj, cp = narrow.objective, narrow.critical_point
    gains, rows, saddles = [], [], []
    for j in range(narrow.widths[1]):
        blocks = split_blocks(obj, cp.theta, 0, j)
        gains.append(tuple(blocks.gain_eigenvalues.tolist()))
        for lam in ratios:
            wcp = classify(
                wide, split_theta(obj, cp.theta, 0, j, lam), rtol=rtol, max_dense_seconds=math.inf
            )
            rows.append(
                SplitRow(
                    unit=j,
                    ratio=lam,
                    kind=wcp.kind,
                    observed=inertia_of(wcp),
                    predicted=predicted_inertia(cp, blocks, lam, rtol=rtol),
                    grad_norm=wcp.grad_norm,
                    min_eigenvalue=wcp.spectrum.min,
                )
            )
            if wcp.kind == "saddle" and wcp.escape_curvature is not None:
                saddles.append(_Saddle(j, lam, wcp))
    return gains, rows, saddles


def _leave(
    obj: Objective, wide: Objective, saddle: _Saddle, train_steps: int, rtol: float | None
) -> tuple[EscapeRecord, str]:
    """Escape ``saddle`` then L-BFGS; and its verdict restricted to the split narrow nets."""
    wcp = saddle.point
    T = split_coordinates(obj, 0, saddle.unit, saddle.ratio)
    sub = restrict(wide, wcp.theta, T[:, : obj.num_params])
    restricted_kind = classify(sub, sub.theta0, rtol=rtol, max_dense_seconds=math.inf).kind
    step, after, theta = _escape(wide, wcp)
    theta, evaluations = _lbfgs(wide, theta, train_steps)
    final, g = wide.loss_and_grad(theta)
    record = EscapeRecord(
        unit=saddle.unit,
        ratio=saddle.ratio,
        saddle_loss=wcp.loss,
        curvature=cast(float, wcp.escape_curvature),
        step=step,
        loss_after_step=after,
        loss_final=float(final),
        grad_norm_final=float(torch.linalg.vector_norm(g)),
        evaluations=evaluations,
    )
    return record, restricted_kind


def _check_experiment(hidden: Any, ratios: Sequence[float]) -> list[float]:
    """The split ratios as floats; ``hidden`` must be one positive width, ``ratios`` not empty."""
    if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
        raise InvalidInputError(
            f"hidden must be a positive integer (one hidden layer), got {hidden!r}"
        )
    lams = [check_ratio(r) for r in ratios]
    if not lams:
        raise InvalidInputError("ratios must hold at least one λ")
    return lams


def lift_experiment(
    *,
    dataset: str = "teacher-student",
    hidden: int = 2,
    n_samples: int = 40,
    ratios: Sequence[float] = (-0.5, 0.0, 0.25, 0.5, 1.0, 1.5),
    seed: int = 0,
    max_seeds: int = 8,
    data_seed: int = 0,
    noise: float = 0.1,
    train_steps: int = 400,
    rtol: float | None = None,
) -> LiftReport:
    """Narrow strict minimum → split saddles → escape below the narrow minimum, as a report.

    A tanh MLP d_in-``hidden``-1 is trained to a strict local minimum
    (:func:`train_strict_minimum`); for every hidden unit j and every λ in ``ratios`` the
    split point is classified and its inertia compared with
    :func:`~saddlescope.lifting.predicted_inertia`; the saddle with the most negative curvature
    is left along its escape direction (backtracking on the actual loss) and L-BFGS continues
    from there. Deterministic. Predicted counts are exact; the observed ones can disagree (✗ in
    the table) only when some eigenvalue of λ(1−λ)·B_j is so small that the congruence takes its
    partner in the wide Hessian below the tolerance: a smaller ``rtol`` settles it.

    Args:
        dataset: ``teacher-student`` or ``sinc`` (see :func:`train_strict_minimum`).
        hidden: the narrow network's one hidden width (one more after the split).
        n_samples: the number of samples.
        ratios: the split ratios λ to try, for every unit.
        seed: the first model seed tried.
        max_seeds: how many seeds to try for the narrow minimum.
        data_seed: the data's seed.
        noise: the standard deviation of the Gaussian noise on the targets.
        train_steps: L-BFGS's iterations (narrow training, and after the escape).
        rtol: the relative eigenvalue tolerance of every verdict and prediction (default
            :func:`~saddlescope.default_rtol` of float64).
    """
    start = time.perf_counter()
    lams = _check_experiment(hidden, ratios)
    with one_thread():
        narrow = train_strict_minimum(
            dataset=dataset,
            hidden=hidden,
            n_samples=n_samples,
            seed=seed,
            max_seeds=max_seeds,
            data_seed=data_seed,
            noise=noise,
            train_steps=train_steps,
            rtol=rtol,
        )
        obj, cp = narrow.objective, narrow.critical_point
        wide = split_objective(obj, 0, 0, 0.5, cp.theta)
        gains, rows, saddles = _split_rows(narrow, wide, lams, rtol)
        escape, restricted_kind = None, None
        if saddles:
            most_negative = min(saddles, key=lambda s: cast(float, s.point.escape_curvature))
            escape, restricted_kind = _leave(obj, wide, most_negative, train_steps, rtol)
    return LiftReport(
        dataset=dataset,
        n_samples=obj.num_samples,
        widths=narrow.widths,
        seed=narrow.seed,
        seeds_tried=narrow.seeds_tried,
        narrow_params=obj.num_params,
        wide_params=wide.num_params,
        narrow_loss=cp.loss,
        narrow_grad_norm=cp.grad_norm,
        narrow_min_eigenvalue=cp.spectrum.min,
        narrow_threshold=cp.threshold,
        rtol=cp.spectrum.rtol,
        gains=tuple(gains),
        rows=tuple(rows),
        restricted_kind=restricted_kind,
        escape=escape,
        seconds=time.perf_counter() - start,
    )
