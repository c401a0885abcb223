"""A whole study: expand the config into runs, skip the stored ones, execute, store as they end."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from saddlescope.errors import InvalidInputError
from saddlescope.objective import Objective
from saddlescope.survey.config import RunSpec, StudyConfig
from saddlescope.survey.executors import execute
from saddlescope.survey.record import SurveyRecord
from saddlescope.survey.replay import rebuild
from saddlescope.survey.runner import RunFailure
from saddlescope.survey.store import ResultStore

__all__ = ["StudyResult", "run_study", "stored_run"]


@dataclass(frozen=True)
class StudyResult:
    """What a call of :func:`run_study` did: runs planned, already stored, run now, seconds.

    Attributes:
        db: the results file.
        planned: runs in the study (or its first ``max_runs``).
        skipped: runs already stored (or stored as failed, unless retried).
        ran: runs executed now (each stored; none also run by another process, as each
            run is claimed first).
        seconds: wall time of the call.
        failed: runs that raised on every attempt now, stored as failed.
        elsewhere: runs left to other live processes running the same study on this file.
    """

    db: Path
    planned: int
    skipped: int
    ran: int
    seconds: float
    failed: int = 0
    elsewhere: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The counts, the seconds and the file's path as text."""
        return {**self.__dict__, "db": str(self.db)}

    def __str__(self) -> str:
        return (
            f"{self.planned} runs planned, {self.skipped} already in {self.db}, "
            f"{self.ran} run now in {self.seconds:.1f} s"
            + (f"; {self.failed} failed (see survey show; --retry-failed)" if self.failed else "")
            + (f"; {self.elsewhere} running in another process" if self.elsewhere else "")
        )


def run_study(
    config: StudyConfig,
    db: str | Path,
    *,
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    max_runs: int | None = None,
    on_record: Callable[[SurveyRecord], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_failure: Callable[[RunFailure], None] | None = None,
    retry_failed: bool = False,
) -> StudyResult:
    """Run (or resume) a study, storing each record in the SQLite file ``db`` as its run ends.

    Runs already stored (same spec, whatever library versions wrote them) are skipped. Several
    processes may run the same study on one file at once: each run is claimed just before it
    starts, so each is computed once, and the runs of a process that dies go to the others.

    Args:
        config: the study.
        db: the SQLite results file (created if missing; a schema-1 file is upgraded in place).
        workers: parallel runs.
        backend: "local" (this process or a process pool) or "ray".
        address: the Ray cluster to join (Ray backend only).
        max_runs: only the study's first N runs (seed-major order); None for all.
        on_record: called with each record once it is stored.
        on_start: called once as ``on_start(total, skipped)`` when the work is known.
        on_failure: called with each run that raised on both its attempts, once stored.
        retry_failed: run the runs stored as failed again (default: skip them).
    """
    config.validate()
    if max_runs is not None and (not isinstance(max_runs, int) or max_runs < 1):
        raise InvalidInputError(f"max_runs must be a positive integer, got {max_runs!r}")
    specs = config.runs()[:max_runs]
    start = time.perf_counter()
    ran = failed = 0
    with ResultStore(db) as store:
        store.add_study(config.name, config.config_hash, config.to_dict())
        todo = _todo(store, specs, retry_failed)
        if on_start is not None:
            on_start(len(specs), len(specs) - len(todo))
        skipped = len(specs) - len(todo)
        while todo:  # again while runs of processes that died meanwhile are left
            before = ran + failed
            claim = functools.partial(_claim, store, skip_failed=not retry_failed)
            for result in execute(
                todo, workers=workers, backend=backend, address=address, claim=claim,
                gpus_per_run=config.gpus_per_run,
            ):  # fmt: skip
                if isinstance(result, RunFailure):
                    store.add_failure(result)
                    failed += 1
                    if on_failure is not None:
                        on_failure(result)
                    continue
                store.add(result)
                ran += 1
                if on_record is not None:
                    on_record(result)
            todo = _todo(store, specs, retry_failed, exclude_failed=True)
            if ran + failed == before:
                break
        elsewhere = store.claimed_elsewhere()
    seconds = time.perf_counter() - start
    return StudyResult(Path(db), len(specs), skipped, ran, seconds, failed, elsewhere)


def _todo(
    store: ResultStore, specs: list[RunSpec], retry_failed: bool, *, exclude_failed: bool = False
) -> list[RunSpec]:
    """The runs not stored (nor stored as failed, unless retried now)."""
    done = store.completed_ids()
    if exclude_failed or not retry_failed:
        done |= {f.run_id for f in store.failures()}
    return [s for s in specs if s.run_id not in done]


def _claim(store: ResultStore, spec: RunSpec, *, skip_failed: bool) -> bool:
    return store.claim(spec.run_id, skip_failed=skip_failed)


def stored_run(store: ResultStore, record: SurveyRecord) -> tuple[Objective, Tensor]:
    """The objective and final θ of a stored run, rebuilt from the record's own spec.

    Args:
        store: the store the record was read from (unused: the record carries its spec; kept
            so that existing callers work).
        record: the stored run.
    """
    del store
    return rebuild(record)
