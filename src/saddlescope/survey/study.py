"""A whole study: expand the config into runs, skip the stored ones, execute, store as they end."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from saddlescope.errors import InvalidInputError
from saddlescope.objective import Objective
from saddlescope.survey.config import StudyConfig
from saddlescope.survey.executors import execute
from saddlescope.survey.record import SurveyRecord
from saddlescope.survey.runner import objective_for
from saddlescope.survey.store import ResultStore

__all__ = ["StudyResult", "run_study", "stored_run"]


@dataclass(frozen=True)
class StudyResult:
    """What a call of :func:`run_study` did: runs planned, already stored, run now, seconds."""

    db: Path
    planned: int
    skipped: int
    ran: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "db": str(self.db)}

    def __str__(self) -> str:
        return (
            f"{self.planned} runs planned, {self.skipped} already in {self.db}, "
            f"{self.ran} run now in {self.seconds:.1f} s"
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
) -> StudyResult:
    """Run (or resume) a study, storing each record in the SQLite file ``db`` as its run ends.

    ``max_runs`` limits the study to its first N runs (seed-major order). ``on_start(total,
    skipped)`` is called once the work is known; ``on_record(record)`` after each stored record.
    """
    config.validate()
    if max_runs is not None and (not isinstance(max_runs, int) or max_runs < 1):
        raise InvalidInputError(f"max_runs must be a positive integer, got {max_runs!r}")
    specs = config.runs()[:max_runs]
    start = time.perf_counter()
    with ResultStore(db) as store:
        store.add_study(config.name, config.config_hash, config.to_dict())
        done = store.completed_ids()
        todo = [s for s in specs if s.run_id not in done]
        if on_start is not None:
            on_start(len(specs), len(specs) - len(todo))
        ran = 0
        for record in execute(todo, workers=workers, backend=backend, address=address):
            if store.add(record):
                ran += 1
            if on_record is not None:
                on_record(record)
    return StudyResult(
        Path(db), len(specs), len(specs) - len(todo), ran, time.perf_counter() - start
    )


def stored_run(store: ResultStore, record: SurveyRecord) -> tuple[Objective, Tensor]:
    """The objective and final θ of a stored run, rebuilt from its study's stored config."""
    config = StudyConfig.from_dict(store.study_config(record.config_hash))
    specs = [
        s
        for s in dataclasses.replace(config, seeds=record.seed + 1).runs()
        if s.run_id == record.run_id
    ]
    if not specs:
        raise InvalidInputError(f"run {record.run_id} is not part of study {config.name}")
    obj = objective_for(specs[0])
    return obj, torch.from_numpy(record.theta.copy()).to(obj.dtype)
