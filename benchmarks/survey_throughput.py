"""Survey throughput: runs per minute with 1 and 2 workers, and where the time goes.

    python -m benchmarks.survey_throughput [--runs 48] [--repeats 3]

Runs the first ``--runs`` runs of the default study into a fresh temporary database, ``--repeats``
times for each worker count, and prints the median wall time, runs per minute, and the split of
the runs' own time between training, the critical-point search and the spectrum (summed over
runs, from the records). Also checks that both worker counts stored identical results.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from saddlescope.survey import ResultStore, default_config, run_study


def one(workers: int, runs: int) -> tuple[float, list]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        start = time.perf_counter()
        run_study(default_config(), db, workers=workers, max_runs=runs)
        wall = time.perf_counter() - start
        with ResultStore(db) as store:
            return wall, store.records()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"default study, first {args.runs} runs, {args.repeats} repeats per worker count")
    reference = None
    for workers in (1, 2):
        walls, split = [], {"train": [], "search": [], "spectrum": []}
        for _ in range(args.repeats):
            wall, records = one(workers, args.runs)
            walls.append(wall)
            split["train"].append(sum(r.seconds_train for r in records))
            split["search"].append(sum(r.seconds_search for r in records))
            split["spectrum"].append(sum(r.seconds_spectrum for r in records))
            results = sorted((r.result_dict() for r in records), key=lambda d: d["run_id"])
            reference = reference or results
            assert results == reference, "records differ between worker counts"
        wall = statistics.median(walls)
        parts = {k: statistics.median(v) for k, v in split.items()}
        busy = sum(parts.values())
        shares = ", ".join(f"{k} {v:.1f} s ({100 * v / busy:.0f} %)" for k, v in parts.items())
        print(
            f"  {workers} worker(s): {wall:6.1f} s wall (median; all: "
            f"{', '.join(f'{w:.1f}' for w in walls)}), {60 * args.runs / wall:6.1f} runs/min; "
            f"inside runs: {shares}"
        )
    print("  records identical across worker counts and repeats: yes")


if __name__ == "__main__":
    main()
