"""The empirical study (MISSION §6): trained networks, their critical points, loss vs minimum ratio.

A resumable, parallel, distributable tool: config → run → record (spec + results) → store.

>>> from saddlescope.survey import StudyConfig, default_config
>>> cfg = default_config()
>>> len(cfg.runs()), cfg.search.method
(192, 'auto')
>>> cfg == StudyConfig()  # the shipped TOML and the dataclass defaults agree
True
"""

from saddlescope.survey.config import (
    DataConfig,
    ModelConfig,
    RunSpec,
    SearchConfig,
    SpectrumConfig,
    StudyConfig,
    TrainConfig,
    default_config,
    load_config,
)
from saddlescope.survey.executors import BACKENDS, execute
from saddlescope.survey.record import SurveyRecord, Verdict, library_versions
from saddlescope.survey.replay import classify_options, escape_stored, rebuild, reclassify
from saddlescope.survey.runner import run_one
from saddlescope.survey.store import ResultStore
from saddlescope.survey.study import StudyResult, run_study, stored_run
from saddlescope.survey.summary import summarize

__all__ = [
    "BACKENDS",
    "DataConfig",
    "ModelConfig",
    "ResultStore",
    "RunSpec",
    "SearchConfig",
    "SpectrumConfig",
    "StudyConfig",
    "StudyResult",
    "SurveyRecord",
    "TrainConfig",
    "Verdict",
    "classify_options",
    "default_config",
    "escape_stored",
    "execute",
    "library_versions",
    "load_config",
    "rebuild",
    "reclassify",
    "run_one",
    "run_study",
    "stored_run",
    "summarize",
]
