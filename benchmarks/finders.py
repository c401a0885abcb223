"""The critical-point finders on the default study's starting points.

    python -m benchmarks.finders [--seeds 12] [--methods lm:300 auto:500 newton-mr:200]
    python -m benchmarks.finders --study digits --seeds 8 --methods lm:200 auto:500
    python -m benchmarks.finders --study source --seeds 10 --methods auto:200 auto:1000
    python -m benchmarks.finders --study digits --seeds 4 --methods auto:500 --detail
    python -m benchmarks.finders --hessian-free --methods auto:500 newton-mr:200 newton-tr:600

Trains the default study's networks (``saddlescope survey``'s own config: tanh students of a
tanh teacher, stopped after 0, 25, 250 and 2,500 Adam steps) once, then runs each finder from
every trained θ with the study's ‖g‖ ≤ 1e-8. Prints per finder how many searches ended converged,
certified gradient-flat, on a kink, stalled or at a budget, the median HVPs and seconds per
search, how many converged runs ran a descent phase, how far the converged runs went (median
‖θ_end − θ_start‖/‖θ_start‖: a critical point far out along saturating units is one "at
infinity" reached only as it tends there), and — against the first finder — how many runs both
converged on and ended at a different point (loss differs by more than 1e-9, relative).
``--study digits`` runs a Dauphin-style network instead: digits pooled to 4×4, 200 samples,
16 → 8 → 10 tanh (226 parameters), stopped after 0, 100 and 1,000 Adam steps.
``--study source`` runs the preset's networks (``presets/source.toml``: 1 → 10 → 10 → 1 ReLU
and tanh MLPs on sinc, 1,000 Adam steps, then the source's gradient-norm phase) and reports the
ReLU and tanh runs apart. ``--detail`` also prints one line per search: its end, ‖θ‖ at the
start and the end, ‖g‖, the eigenvalues in ``classify``'s zero band at the end (dense), and for
an unconverged search its flatness evidence. ``--hessian-free`` gives every objective a memory
budget the dense Hessian does not fit, as for a network too large for one: the driver then runs
Newton-MR and descent from products alone (no LM, no eigh). The Baldi–Hornik network and Frye
et al.'s deep linear autoencoder are ``python -m benchmarks.ground_truth``.
"""

from __future__ import annotations

import argparse
import collections
import math
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor

from saddlescope.hessian import dense_hessian_fits
from saddlescope.objective import Objective
from saddlescope.runtime import one_thread
from saddlescope.search import CriticalPointSearch, find_critical_point
from saddlescope.survey import (
    DataConfig,
    ModelConfig,
    StudyConfig,
    TrainConfig,
    default_config,
    load_config,
)
from saddlescope.survey.runner import trained_objective
from saddlescope.survey.source_protocol import gradnorm_phase
from saddlescope.tolerance import Tolerance
from saddlescope.twins import module_at, objective_like

DIGITS = StudyConfig(
    name="digits-226",
    data=DataConfig(name="digits", n_samples=200, pool=2, classes=10),
    model=ModelConfig(hidden=((8,),), activation="tanh"),
    train=TrainConfig(steps=(0, 100, 1000)),
)


PRESET = Path(__file__).resolve().parents[1] / "presets" / "source.toml"


def starts(study: str, seeds: int) -> list[tuple[str, Objective, Tensor]]:
    """(group, objective, start) of every run of the study's first ``seeds`` seeds.

    The start is where the run's training stopped, then (``source``) where the gradient-norm
    phase ended, as the survey has it.
    """
    config = {
        "default": default_config,
        "digits": lambda: DIGITS,
        "source": lambda: load_config(PRESET),
    }
    out = []
    for spec in replace(config[study](), seeds=seeds).runs():
        obj = trained_objective(spec)
        start = obj.theta0
        if spec.search.gradnorm_phase:
            with one_thread():
                start = gradnorm_phase(obj, start, spec.search.gradnorm_phase, spec.train.lr)
        group = spec.activation if study == "source" else ""
        out.append((group, obj, start))
    return out


def hessian_free(obj: Objective) -> Objective:
    """The same objective with a memory budget that its dense Hessian does not fit."""
    budget = obj.dense_hessian_bytes() - 1
    return objective_like(obj, module_at(obj, obj.theta0), memory_budget=budget, hold_data=True)


def run(
    method: str, steps: int, work: list[tuple[str, Objective, Tensor]]
) -> list[CriticalPointSearch]:
    results = []
    for _, obj, start in work:
        with one_thread():
            results.append(
                find_critical_point(obj, start, method=method, grad_tol=1e-8, max_steps=steps)
            )
    return results


def report(
    name: str, res: list[CriticalPointSearch], ref: list[CriticalPointSearch], start: list[Tensor]
) -> str:
    ends = collections.Counter(r.status for r in res)
    went = [
        float((r.theta - t0).norm() / t0.norm()) for r, t0 in zip(res, start) if r.converged
    ] or [math.nan]
    descended = sum(r.converged and any(m == "descent" for m, _ in r.phases) for r in res)
    both = [(a, b) for a, b in zip(ref, res) if a.converged and b.converged]
    moved = sum(abs(a.loss - b.loss) > 1e-9 * max(1.0, abs(a.loss)) for a, b in both)
    return (
        f"{name:<16} {ends['converged']:>9} {ends['gradient-flat']:>5} {ends['on-kink']:>7} "
        f"{ends['stalled']:>7} "
        f"{sum(v for k, v in ends.items() if k.startswith('max-')):>7} "
        f"{statistics.median(r.hvps for r in res):>9.0f} "
        f"{statistics.median(r.seconds for r in res):>8.3f} {descended:>8} "
        f"{statistics.median(went):>8.3g} "
        f"{moved:>3}/{len(both):<4}"
    )


def detail(res: CriticalPointSearch, obj: Objective, start: Tensor) -> str:
    """One search: its end, ‖θ‖ there and at the start, ‖g‖, n₀ at the end, flatness."""
    zeros: int | str = "—"
    if dense_hessian_fits(obj):
        lam = torch.linalg.eigvalsh(obj.hessian(res.theta))
        zeros = Tolerance.resolve(obj.dtype).inertia(lam).n_zero
    flat = "" if res.flatness is None else f"; {res.flatness}"
    return (
        f"  {res.status:<14} ‖θ‖ {float(start.norm()):.3g} → {float(res.theta.norm()):.3g}, "
        f"‖g‖ {res.grad_norm:.2e}, n₀ {zeros}/{obj.num_params}{flat}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=("default", "digits", "source"), default="default")
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--methods", nargs="+", default=["lm:300", "auto:500", "newton-mr:200"])
    parser.add_argument("--detail", action="store_true", help="one line per search as well")
    parser.add_argument("--hessian-free", action="store_true", help="no dense Hessians")
    args = parser.parse_args()
    t0 = time.perf_counter()
    work = starts(args.study, args.seeds)
    if args.hessian_free:
        work = [(group, hessian_free(obj), start) for group, obj, start in work]
    print(f"{len(work)} starts trained in {time.perf_counter() - t0:.0f} s")
    print(
        f"{'finder':<16} {'converged':>9} {'flat':>5} {'on-kink':>7} {'stalled':>7} {'budget':>7} "
        f"{'HVPs/run':>9} {'s/run':>8} {'descent':>8} {'went':>8} moved/both"
    )
    groups = sorted({group for group, _, _ in work})
    ref = None
    for item in args.methods:
        method, steps = item.split(":")
        res = run(method, int(steps), work)
        ref = ref or res
        for group in groups:
            pick = [i for i, (g, _, _) in enumerate(work) if g == group]
            name = f"{method} {steps}" + (f" {group}" if group else "")
            print(
                report(
                    name, [res[i] for i in pick], [ref[i] for i in pick],
                    [work[i][2] for i in pick],
                ),
                flush=True,
            )  # fmt: skip
        for r, (_, obj, start) in zip(res, work) if args.detail else ():
            print(detail(r, obj, start), flush=True)


if __name__ == "__main__":
    main()
