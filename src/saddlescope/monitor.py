"""Curvature while training: has the run stalled, and at a minimum or at a saddle?

A training loop calls :meth:`CurvatureMonitor.step` after each optimiser step with the loss
(cheap: the loss joins a window; nothing else runs). The monitor checks curvature

* on a **plateau**: the loss varied by at most loss_tol·max(1, |L|) over the last ``window``
  steps and ‖∇L‖ ≤ stall_grad_norm on the monitor's data (one gradient, computed only once the
  window is flat); or
* every ``every`` steps, stalled or not.

A check finds λ_min and λ_max with their residuals by Lanczos, each to lanczos_tol·max|λ|
(absolute: the verdict compares λ_min with the zero band, a fraction of max|λ|) —
**warm-started** from the previous check's Ritz vectors plus 1 % of a random vector, which a few
hundred optimiser steps move little, so a check after the first costs a fraction of a cold one.
A "stalled-at-minimum" verdict is a claim about the whole spectrum, so it is confirmed from a
random start (a negative direction new since the last check could hide from a warm start). When
asked, it also estimates the index and minimum ratio with error bars
(:func:`~saddlescope.inertia.estimate_inertia`). Its verdict:
"stalled-at-saddle" (on a plateau, λ_min < −threshold: the result holds the escape direction and
the predicted decrease of a unit step along it), "stalled-at-minimum" (on a plateau, no curvature
below −threshold), or "not-stalled". :meth:`CurvatureMonitor.escape` takes that step, as
:class:`~saddlescope.SaddleEscape` would. Checks go to a TensorBoard ``SummaryWriter`` (scalars;
the Ritz values as a histogram) and to a CSV file; :meth:`~CurvatureMonitor.state_dict` lets a
resumed run go on where it stopped, without a row lost or written twice.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from saddlescope.checks import check_int, check_positive
from saddlescope.errors import InvalidInputError
from saddlescope.inertia import estimate_inertia
from saddlescope.lanczos import lanczos
from saddlescope.monitor_log import CheckLog, CurvatureCheck
from saddlescope.negative_curvature import curvature_step, downhill
from saddlescope.objective import Objective
from saddlescope.plateau import LossWindow
from saddlescope.saddle_escape import write_parameters
from saddlescope.tolerance import STALL_GRAD_NORM, Tolerance

__all__ = ["CurvatureCheck", "CurvatureMonitor"]

_WARM_NOISE = 0.01  # the random share of a warm start vector (guards against a new extreme)
_STATE_VERSION = 1


class CurvatureMonitor:
    """Watches a training run's loss; checks the curvature on a plateau or every N steps.

    Args:
        model: the user's model; read at each check (its values now), never modified except
            by :meth:`escape`.
        loss_fn: the loss, as :class:`~saddlescope.Objective` takes it.
        data: the data the curvature is checked on, as :class:`~saddlescope.Objective` takes
            it (a held batch or a few: a check is one Lanczos run over it).
        every: also check every this many steps (None: only on a plateau).
        window: the number of recent losses a plateau needs flat (≥ 2).
        loss_tol: flat means the window's losses vary by at most loss_tol·max(1, |L|).
        stall_grad_norm: and ‖∇L‖ ≤ this on ``data`` (as :class:`~saddlescope.SaddleEscape`).
        lanczos_tol: the accuracy of λ_min and λ_max, relative to max|λ|.
        inertia: also estimate the index and minimum ratio with error bars at each check.
        warm_start: start each check's Lanczos from the previous check's Ritz vectors (False:
            from a random vector every time).
        rtol: the eigenvalue zero band relative to max|λ| (default by dtype).
        seed: seeds the Lanczos start vectors and the inertia probes.
        writer: a TensorBoard ``SummaryWriter`` (anything with ``add_scalar`` and
            ``add_histogram``), or None.
        csv_path: a CSV file that gets one row per check, or None.
        **objective_options: keywords for the :class:`~saddlescope.Objective` (dtype,
            norm_stats, param_filter, memory_budget, …).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Any,
        data: Any,
        *,
        every: int | None = None,
        window: int = 50,
        loss_tol: float = 1e-4,
        stall_grad_norm: float = STALL_GRAD_NORM,
        lanczos_tol: float = 1e-3,
        inertia: bool = False,
        warm_start: bool = True,
        rtol: float | None = None,
        seed: int = 0,
        writer: Any = None,
        csv_path: str | Path | None = None,
        **objective_options: Any,
    ) -> None:
        self.every = None if every is None else check_int("every", every, 1)
        self.window = check_int("window", window, 2)
        self.loss_tol = check_positive("loss_tol", loss_tol, allow_zero=True)
        self.stall_grad_norm = check_positive("stall_grad_norm", stall_grad_norm)
        self.lanczos_tol = check_positive("lanczos_tol", lanczos_tol)
        self.inertia, self.warm_start, self.seed = bool(inertia), bool(warm_start), seed
        self.model = model
        self.objective = Objective(model, loss_fn, data, **objective_options)
        self.tolerance = Tolerance.resolve(self.objective.dtype, rtol=rtol)
        self.log = CheckLog(writer, csv_path)
        self.checks: list[CurvatureCheck] = []
        self.steps = 0
        self._losses = LossWindow(self.window, self.loss_tol)
        self._ritz: Tensor | None = None  # the last check's Ritz vectors (CPU, float64)
        self._theta: Tensor | None = None  # θ at the last check

    # ----------------------------------------------------------------------------- each step
    def step(
        self, loss: float | Tensor | None = None, step: int | None = None
    ) -> CurvatureCheck | None:
        """Record one training step; check the curvature when a plateau or ``every`` says so.

        Args:
            loss: the step's training loss (a float or a 0-dim tensor; None: no loss this step,
                e.g. between a trainer's logging steps).
            step: the training step's number (default: one more than the last).

        Returns:
            The check, when one ran; else None.
        """
        self.steps = self.steps + 1 if step is None else int(step)
        if loss is not None:
            value = float(loss.detach() if isinstance(loss, Tensor) else loss)
            if not math.isfinite(value):
                self._losses.clear()
            else:
                self._losses.append(value)
        due = self.every is not None and self.steps % self.every == 0
        if due:
            return self.check("every")
        if self._losses.flat():
            start = time.perf_counter()
            theta = self.objective.refresh(self.model)
            value_now, g = self.objective.loss_and_grad(theta)
            if float(g.norm()) <= self.stall_grad_norm:
                return self._check("plateau", theta, value_now, g, start)
            self._losses.clear()  # flat but still moving: wait for a whole window again
        return None

    # ----------------------------------------------------------------------------- a check
    def check(self, reason: str = "asked") -> CurvatureCheck:
        """Check the curvature now (the model's values now), log it and return it.

        Args:
            reason: why ("plateau", "every", or "asked"), recorded in the result.
        """
        start = time.perf_counter()
        theta = self.objective.refresh(self.model)
        return self._check(reason, theta, *self.objective.loss_and_grad(theta), start)

    def _check(
        self, reason: str, theta: Tensor, loss: Tensor, g: Tensor, start: float
    ) -> CurvatureCheck:
        """The check at θ, whose L and ∇L are known (the clock started at ``start``)."""
        obj = self.objective
        grad_norm = float(g.norm())
        plateau = self._losses.flat() and grad_norm <= self.stall_grad_norm
        op = obj.hessian_operator(theta)
        g = g.to(op.dtype)  # a half-precision model's gradient, in the curvature's working dtype
        start_vector = self._warm_start(obj.num_params)
        res, low, high, threshold = self._extremes(op, start_vector)
        hvps = res.products
        if plateau and start_vector is not None and low >= -threshold:
            # a minimum is a claim about the whole spectrum: confirmed from a random start,
            # which a negative direction new since the last check cannot hide from
            (res, low, high, threshold), start_vector = self._extremes(op, None), None
            hvps += res.products
        u, decrease = None, None
        if low < -threshold:
            u = downhill(res.eigenvectors[:, 0], g)
            decrease = -float(g @ u) + 0.5 * abs(low)
        bars: dict[str, float | None] = {}
        if self.inertia:
            est = estimate_inertia(op, rtol=self.tolerance.rtol, seed=self.seed + self.steps)
            hvps += est.hvps
            i = est.inertia
            bars = {
                "index": i.index, "index_err": i.index_err,
                "minimum_ratio": i.minimum_ratio, "minimum_ratio_err": i.minimum_ratio_err,
            }  # fmt: skip
        verdict = "not-stalled"
        if plateau:
            verdict = "stalled-at-saddle" if u is not None else "stalled-at-minimum"
        check = CurvatureCheck(
            step=self.steps, reason=reason, verdict=verdict, loss=float(loss),
            grad_norm=grad_norm, lambda_min=low, lambda_max=high,
            residual_min=float(res.residuals[0]), residual_max=float(res.residuals[-1]),
            threshold=threshold, ritz_steps=res.steps, hvps=hvps,
            seconds=time.perf_counter() - start, warm=start_vector is not None,
            predicted_decrease=decrease, escape_direction=u, **bars,
        )  # fmt: skip
        self._ritz = res.eigenvectors.detach().to("cpu", torch.float64)
        self._theta = theta
        self._losses.clear()
        self.checks.append(check)
        self.log.write(check, res.ritz_values)
        return check

    def _extremes(self, op: Any, start: Tensor | None) -> tuple[Any, float, float, float]:
        """(Lanczos result, λ_min, λ_max, zero band's half-width); λ to lanczos_tol·max|λ|."""
        res = lanczos(
            op, 1, which="both", lanczos_tol=self.lanczos_tol, floor=1.0,
            seed=self.seed + self.steps, start=start,
        )  # fmt: skip
        low, high = float(res.eigenvalues[0]), float(res.eigenvalues[-1])
        return res, low, high, self.tolerance.threshold(max(abs(low), abs(high)))

    def _warm_start(self, n: int) -> Tensor | None:
        """The previous Ritz vectors summed, plus a random share (None before a first check)."""
        if not self.warm_start or self._ritz is None or self._ritz.shape[0] != n:
            return None
        gen = torch.Generator().manual_seed(self.seed + self.steps)
        noise = torch.randn(n, generator=gen, dtype=torch.float64)
        base = self._ritz.sum(1)
        base = base / base.norm()
        return base + _WARM_NOISE * noise / noise.norm()

    # ----------------------------------------------------------------------------- the way out
    @torch.no_grad()
    def escape(self, optimizer: torch.optim.Optimizer | None = None) -> float:
        """Take the last check's negative-curvature step in the model; return the new loss.

        The step is :func:`~saddlescope.curvature_step`'s line search along the escape
        direction, as :class:`~saddlescope.SaddleEscape` takes it; the optimiser's state for
        the moved parameters is dropped (its momenta point the old way).

        Args:
            optimizer: the training optimiser, whose per-parameter state is reset (or None).
        """
        last = self.checks[-1] if self.checks else None
        if last is None or last.escape_direction is None or last.verdict != "stalled-at-saddle":
            raise InvalidInputError(
                "escape needs a last check with verdict 'stalled-at-saddle'; the last one is "
                f"{last.verdict if last else 'missing'}"
            )
        obj = self.objective
        theta = obj.refresh(self.model)
        if self._theta is None or not torch.equal(theta, self._theta):
            raise InvalidInputError(
                "the model has moved since the last check: call check() again, then escape()"
            )
        new, after, _ = curvature_step(
            obj, theta, last.escape_direction, last.lambda_min, last.loss
        )
        live = dict(self.model.named_parameters())
        write_parameters([live[name] for name in obj.param_names], obj, new, optimizer)
        return after

    # ----------------------------------------------------------------------------- resuming
    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs: the step, the loss window, the checks and the Ritz vectors."""
        return {
            "version": _STATE_VERSION,
            "steps": self.steps,
            "losses": self._losses.values(),
            "checks": [c.to_dict() for c in self.checks],
            "ritz": self._ritz,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from a :meth:`state_dict`; CSV rows written after it are dropped (no duplicates).

        Args:
            state: a dict from :meth:`state_dict`.
        """
        if not isinstance(state, dict) or state.get("version") != _STATE_VERSION:
            raise InvalidInputError(
                f"not a CurvatureMonitor state of version {_STATE_VERSION}: pass what "
                "CurvatureMonitor.state_dict() returned"
            )
        ritz = state["ritz"]
        if ritz is not None and (
            not isinstance(ritz, Tensor)
            or ritz.ndim != 2
            or ritz.shape[0] != self.objective.num_params
        ):
            raise InvalidInputError("the state's Ritz vectors do not fit this model's parameters")
        self.steps = check_int("steps", state["steps"], 0)
        self._losses = LossWindow(self.window, self.loss_tol)
        for x in state["losses"]:
            self._losses.append(float(x))
        self.checks = [CurvatureCheck.from_dict(d) for d in state["checks"]]
        self._ritz = ritz
        self._theta = None
        self.log.resume_after(self.steps)
