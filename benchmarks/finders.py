"""The critical-point finders on the default study's starting points.

    python -m benchmarks.finders [--seeds 12] [--methods lm:300 auto:500 newton-mr:200]
    python -m benchmarks.finders --study digits --seeds 8 --methods lm:200 auto:500
    python -m benchmarks.finders --study source --seeds 10 --methods auto:200 auto:1000

Trains the default study's networks (``saddlescope survey``'s own config: tanh students of a
tanh teacher, stopped after 0, 25, 250 and 2,500 Adam steps) once, then runs each finder from
every trained θ with the study's ‖g‖ ≤ 1e-8. Prints per finder how many searches ended converged,
certified gradient-flat, on a kink, stalled or at a budget, the median HVPs and seconds per
search, how many converged runs ran a descent phase, and — against the first finder — how many
runs both converged on and ended at a different point (loss differs by more than 1e-9,
relative). ``--study digits`` runs a Dauphin-style network instead: digits pooled to 4×4,
200 samples, 16 → 8 → 10 tanh (226 parameters), stopped after 0, 100 and 1,000 Adam steps.
``--study source`` runs the preset's networks (``presets/source.toml``: 1 → 10 → 10 → 1 ReLU
and tanh MLPs on sinc, 1,000 Adam steps, then the source's gradient-norm phase) and reports the
ReLU and tanh runs apart. The Baldi–Hornik network and Frye et al.'s deep linear autoencoder are
``python -m benchmarks.ground_truth``.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from dataclasses import replace
from pathlib import Path

from torch import Tensor

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


def report(name: str, res: list[CriticalPointSearch], ref: list[CriticalPointSearch]) -> str:
    ends = collections.Counter(r.status for r in res)
    descended = sum(r.converged and any(m == "descent" for m, _ in r.phases) for r in res)
    both = [(a, b) for a, b in zip(ref, res) if a.converged and b.converged]
    moved = sum(abs(a.loss - b.loss) > 1e-9 * max(1.0, abs(a.loss)) for a, b in both)
    return (
        f"{name:<16} {ends['converged']:>9} {ends['gradient-flat']:>5} {ends['on-kink']:>7} "
        f"{ends['stalled']:>7} "
        f"{sum(v for k, v in ends.items() if k.startswith('max-')):>7} "
        f"{statistics.median(r.hvps for r in res):>9.0f} "
        f"{statistics.median(r.seconds for r in res):>8.3f} {descended:>8} "
        f"{moved:>3}/{len(both):<4}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=("default", "digits", "source"), default="default")
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--methods", nargs="+", default=["lm:300", "auto:500", "newton-mr:200"])
    args = parser.parse_args()
    t0 = time.perf_counter()
    work = starts(args.study, args.seeds)
    print(f"{len(work)} starts trained in {time.perf_counter() - t0:.0f} s")
    print(
        f"{'finder':<16} {'converged':>9} {'flat':>5} {'on-kink':>7} {'stalled':>7} {'budget':>7} "
        f"{'HVPs/run':>9} {'s/run':>8} {'descent':>8} moved/both"
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
            print(report(name, [res[i] for i in pick], [ref[i] for i in pick]), flush=True)


if __name__ == "__main__":
    main()
