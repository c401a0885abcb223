"""The critical-point finders on the default study's starting points.

    python -m benchmarks.finders [--seeds 12] [--methods lm:300 auto:500 newton-mr:200]
    python -m benchmarks.finders --study digits --seeds 8 --methods lm:200 auto:500

Trains the default study's networks (``saddlescope survey``'s own config: tanh students of a
tanh teacher, stopped after 0, 25, 250 and 2,500 Adam steps) once, then runs each finder from
every trained θ with the study's ‖g‖ ≤ 1e-8. Prints per finder how many searches ended
converged, certified gradient-flat, stalled or at a budget, the median HVPs and seconds per
search, how many converged runs ran a descent phase, and — against the first finder — how many
runs both converged on and ended at a different point (loss differs by more than 1e-9,
relative). ``--study digits`` runs a Dauphin-style network instead: digits pooled to 4×4,
200 samples, 16 → 8 → 10 tanh (226 parameters), stopped after 0, 100 and 1,000 Adam steps. The
Baldi–Hornik network is ``python -m benchmarks.ground_truth``.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
from dataclasses import replace

from saddlescope.objective import Objective
from saddlescope.runtime import one_thread
from saddlescope.search import CriticalPointSearch, find_critical_point
from saddlescope.survey import DataConfig, ModelConfig, StudyConfig, TrainConfig, default_config
from saddlescope.survey.runner import trained_objective

DIGITS = StudyConfig(
    name="digits-226",
    data=DataConfig(name="digits", n_samples=200, pool=2, classes=10),
    model=ModelConfig(hidden=((8,),), activation="tanh"),
    train=TrainConfig(steps=(0, 100, 1000)),
)


def starts(study: str, seeds: int) -> list[Objective]:
    """The objective of every run of the study's first ``seeds`` seeds, θ0 trained."""
    config = default_config() if study == "default" else DIGITS
    return [trained_objective(spec) for spec in replace(config, seeds=seeds).runs()]


def run(method: str, steps: int, work: list[Objective]) -> list[CriticalPointSearch]:
    results = []
    for obj in work:
        with one_thread():
            results.append(
                find_critical_point(obj, obj.theta0, method=method, grad_tol=1e-8, max_steps=steps)
            )
    return results


def report(name: str, res: list[CriticalPointSearch], ref: list[CriticalPointSearch]) -> str:
    ends = collections.Counter(r.status for r in res)
    descended = sum(r.converged and any(m == "descent" for m, _ in r.phases) for r in res)
    both = [(a, b) for a, b in zip(ref, res) if a.converged and b.converged]
    moved = sum(abs(a.loss - b.loss) > 1e-9 * max(1.0, abs(a.loss)) for a, b in both)
    return (
        f"{name:<16} {ends['converged']:>9} {ends['gradient-flat']:>5} {ends['stalled']:>7} "
        f"{sum(v for k, v in ends.items() if k.startswith('max-')):>7} "
        f"{statistics.median(r.hvps for r in res):>9.0f} "
        f"{statistics.median(r.seconds for r in res):>8.3f} {descended:>8} "
        f"{moved:>3}/{len(both):<4}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=("default", "digits"), default="default")
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--methods", nargs="+", default=["lm:300", "auto:500", "newton-mr:200"])
    args = parser.parse_args()
    t0 = time.perf_counter()
    work = starts(args.study, args.seeds)
    print(f"{len(work)} starts trained in {time.perf_counter() - t0:.0f} s")
    print(
        f"{'finder':<16} {'converged':>9} {'flat':>5} {'stalled':>7} {'budget':>7} "
        f"{'HVPs/run':>9} {'s/run':>8} {'descent':>8} moved/both"
    )
    ref = None
    for item in args.methods:
        method, steps = item.split(":")
        res = run(method, int(steps), work)
        ref = ref or res
        print(report(f"{method} {steps}", res, ref), flush=True)


if __name__ == "__main__":
    main()
