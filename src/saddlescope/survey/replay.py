"""Back to a stored run: its objective and θ, its verdict, the way out — from the record.

A record carries its spec, θ, tolerance, verdict and escape direction, so these functions rebuild
only what a file cannot hold (the objective: model and data, from the spec) and recompute only
what is not stored (the eigenvectors a picture needs, the escape paths). A re-classification
uses the record's own tolerance and loss bound, so its verdict is the stored one.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from saddlescope.classify import CriticalPoint, classify
from saddlescope.escape import EscapeResult, compare_escapes
from saddlescope.objective import Objective
from saddlescope.survey.record import SurveyRecord
from saddlescope.survey.runner import objective_for

__all__ = ["classify_options", "escape_stored", "rebuild", "reclassify"]


def rebuild(record: SurveyRecord) -> tuple[Objective, Tensor]:
    """The objective (from the record's spec) and the stored final θ of a run.

    Args:
        record: a stored run.
    """
    obj = objective_for(record.spec)
    return obj, torch.from_numpy(record.theta.copy()).to(obj.dtype)


def classify_options(record: SurveyRecord) -> dict[str, Any]:
    """The keyword arguments of :func:`~saddlescope.classify` that reproduce the run's verdict.

    Args:
        record: a stored run; its tolerance and its spec's loss lower bound are used.
    """
    return {
        **record.tolerance.to_dict(),
        "loss_lower_bound": record.spec.spectrum.loss_lower_bound,
        "max_dense_seconds": math.inf,  # as the run: the full spectrum whenever it fits
    }


def reclassify(record: SurveyRecord) -> CriticalPoint:
    """Classify the stored θ again, exactly as the run did (same tolerance, bound and seed).

    Args:
        record: a stored run; ``Verdict.of(reclassify(record)) == record.verdict``.
    """
    obj, theta = rebuild(record)
    return classify(obj, theta, seed=record.seed, **classify_options(record))


def escape_stored(
    record: SurveyRecord, *, decrease: float, max_steps: int
) -> tuple[EscapeResult, ...]:
    """Every escape method from a stored saddle's θ, until the loss is ``decrease`` lower.

    Args:
        record: a stored run (a saddle, to be useful).
        decrease: the fraction of the stored loss to lose, in (0, 1).
        max_steps: each method's step budget.
    """
    obj, theta = rebuild(record)
    return compare_escapes(
        obj,
        theta,
        decrease=decrease * record.loss_critical,
        max_steps=max_steps,
        rtol=record.tolerance.rtol,
        seed=record.seed,
    )
