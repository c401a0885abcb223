"""Validation of a study config, one small check per section: the first key that cannot work.

Every message names the config key (``config key 'train.lr' must be ...``) and what it needs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from saddlescope.checks import check_int, check_positive
from saddlescope.data import DATASETS, load_dataset
from saddlescope.errors import InvalidInputError
from saddlescope.models import ACTIVATIONS
from saddlescope.search import METHODS

if TYPE_CHECKING:
    from saddlescope.survey.config import (
        DataConfig,
        ModelConfig,
        SearchConfig,
        SpectrumConfig,
        TrainConfig,
    )

__all__ = [
    "OPTIMIZERS",
    "SEARCH_METHODS",
    "validate_data",
    "validate_model",
    "validate_search",
    "validate_spectrum",
    "validate_train",
]

OPTIMIZERS = ("adam", "sgd", "lbfgs")

# The largest sizes a study may ask for: a config (or a database's stored one) is checked
# against them before anything is allocated, so a crafted file cannot exhaust memory or time.
LIMITS = {
    "data.n_samples": 1_000_000,
    "data.d_in": 10_000,
    "data.d_out": 10_000,
    "data.teacher_hidden": 10_000,
    "data.classes": 10_000,
    "data.pool": 64,
    "model.width": 100_000,
    "model.depth": 64,
    "train.steps": 10_000_000,
    "train.batch_size": 1_000_000,
    "search.max_steps": 1_000_000,
    "search.max_hvps": 10**12,
    "search.gradnorm_phase": 1_000_000,
}
SEARCH_METHODS = tuple(METHODS)


def validate_data(d: DataConfig) -> None:
    """Check the [data] section.

    Args:
        d: the section as read.
    """
    _check_choice("data.name", d.name, DATASETS, "dataset ")
    _check_int("data.n_samples", d.n_samples, 1)
    for key in ("seed", "classes", "pool", "d_in", "teacher_hidden", "d_out"):
        _check_int(f"data.{key}", getattr(d, key), 0 if key == "seed" else 1)
    if d.seed > 2**63 - 1:
        raise InvalidInputError(f"config key 'data.seed' must be < 2**63, got {d.seed}")
    if d.name == "digits":
        try:
            load_dataset("digits", n_samples=d.n_samples, classes=d.classes, pool=d.pool)
        except InvalidInputError as err:
            raise InvalidInputError(f"config key 'data' ({err})") from None
    _check_float("data.noise", d.noise, allow_zero=True)


def validate_model(m: ModelConfig) -> None:
    """Check the [model] section.

    Args:
        m: the section as read.
    """
    if not m.hidden:
        raise InvalidInputError("config key 'model.hidden' must list at least one model")
    for widths in m.hidden:
        if any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths):
            raise InvalidInputError(
                f"config key 'model.hidden': widths must be positive integers, got {list(widths)}"
            )
        if len(widths) > LIMITS["model.depth"] or max(widths, default=0) > LIMITS["model.width"]:
            raise InvalidInputError(
                f"config key 'model.hidden': {list(widths)} is over the limits "
                f"({LIMITS['model.depth']} layers of at most {LIMITS['model.width']:,} units)"
            )
    if not m.activations:
        raise InvalidInputError("config key 'model.activation' must name at least one activation")
    for activation in m.activations:
        _check_choice("model.activation", activation, tuple(ACTIVATIONS))


def validate_train(t: TrainConfig) -> None:
    """Check the [train] section.

    Args:
        t: the section as read.
    """
    _check_choice("train.optimizer", t.optimizer, OPTIMIZERS)
    _check_float("train.lr", t.lr)
    if not t.steps:
        raise InvalidInputError("config key 'train.steps' must list at least one value")
    for s in t.steps:
        _check_int("train.steps", s, 0)
    _check_int("train.batch_size", t.batch_size, 0)


def validate_search(s: SearchConfig) -> None:
    """Check the [search] section.

    Args:
        s: the section as read.
    """
    _check_choice("search.method", s.method, SEARCH_METHODS)
    _check_float("search.grad_tol", s.grad_tol)
    _check_int("search.max_steps", s.max_steps, 0)
    _check_int("search.max_hvps", s.max_hvps, 0)
    _check_int("search.gradnorm_phase", s.gradnorm_phase, 0)


def validate_spectrum(sp: SpectrumConfig) -> None:
    """Check the [spectrum] section.

    Args:
        sp: the section as read.
    """
    _check_float("spectrum.rtol", sp.rtol, allow_zero=True)
    if sp.rtol >= 1:
        raise InvalidInputError(f"config key 'spectrum.rtol' must be < 1, got {sp.rtol}")
    _check_float("spectrum.atol", sp.atol, allow_zero=True)
    _check_int("spectrum.memory_budget", sp.memory_budget, 1)
    if sp.loss_lower_bound is not None:
        bound = sp.loss_lower_bound
        if (
            not isinstance(bound, (int, float))
            or isinstance(bound, bool)
            or not math.isfinite(bound)
        ):
            raise InvalidInputError(
                "config key 'spectrum.loss_lower_bound' must be a number or \"none\", "
                f"got {bound!r}"
            )


def _check_choice(key: str, value: Any, choices: tuple[str, ...], what: str = "") -> None:
    if value not in choices:
        raise InvalidInputError(
            f"config key '{key}': unknown {what}{value!r}; choose one of {', '.join(choices)}"
        )


def _check_int(key: str, value: Any, minimum: int) -> None:
    check_int(f"config key '{key}'", value, minimum, LIMITS.get(key))


def _check_float(key: str, value: Any, *, allow_zero: bool = False) -> None:
    if isinstance(value, str):  # a quoted number in TOML is a mistake, not a number
        bound = "≥ 0" if allow_zero else "> 0"
        raise InvalidInputError(
            f"config key '{key}' must be a finite number {bound}, got {value!r}"
        )
    check_positive(f"config key '{key}'", value, allow_zero=allow_zero)
