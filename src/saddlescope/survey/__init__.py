"""The empirical study (MISSION §6): many trained networks, their critical points, loss against
minimum ratio — as a resumable, parallel, distributable tool.

>>> from saddlescope.survey import StudyConfig, default_config
>>> cfg = default_config()
>>> len(cfg.runs()), cfg.search.method
(192, 'lm')
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
from saddlescope.survey.record import SurveyRecord
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
    "default_config",
    "execute",
    "load_config",
    "run_one",
    "run_study",
    "stored_run",
    "summarize",
]
