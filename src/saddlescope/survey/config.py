"""A study's configuration: a TOML file or the same as frozen dataclasses, checked up front.

Every key is known, every size possible and every dense spectrum affordable before any run
starts; a mistake raises :class:`~saddlescope.InvalidInputError` naming the key. A study expands
into runs — one per (hidden widths, training steps, seed) — each identified by a hash of
everything that determines its result (not of library versions, which records keep beside it),
so a rerun of the same study skips what is stored, on any machine and after any upgrade.
Tolerance defaults come from :mod:`saddlescope.tolerance` (float64: the survey's dtype).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from saddlescope.checks import check_int
from saddlescope.errors import InvalidInputError
from saddlescope.models import num_params
from saddlescope.survey.identity import identity, plain, short_hash
from saddlescope.survey.validate import (
    validate_data,
    validate_model,
    validate_search,
    validate_spectrum,
    validate_train,
)
from saddlescope.tolerance import Tolerance, default_grad_tol, default_rtol

_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
MAX_CONFIG_BYTES = 1024**2
MAX_SEEDS = 100_000  # seeds per width: the run list is built in memory before anything runs

__all__ = [
    "DataConfig",
    "ModelConfig",
    "RunSpec",
    "SearchConfig",
    "SpectrumConfig",
    "StudyConfig",
    "TrainConfig",
    "default_config",
    "load_config",
]

_DTYPE = torch.float64  # every survey run computes in float64


@dataclass(frozen=True)
class DataConfig:
    """Which embedded dataset, how many samples, and its own seed (fixed across runs).

    Attributes:
        name: the dataset ("digits", "teacher-student" or "sinc").
        n_samples: how many samples.
        seed: the data's own seed (the same for every run of a study).
        classes: digits: how many classes.
        pool: digits: the pooling factor of the 8×8 images.
        d_in: teacher-student: input size.
        teacher_hidden: teacher-student: the teacher's hidden width.
        d_out: teacher-student: output size.
        noise: teacher-student and sinc: the targets' noise level.
    """

    name: str = "teacher-student"
    n_samples: int = 64
    seed: int = 0
    classes: int = 10
    pool: int = 2
    d_in: int = 4
    teacher_hidden: int = 3
    d_out: int = 1
    noise: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    """The model family: one MLP per entry of ``hidden`` (hidden-layer widths).

    Attributes:
        hidden: one tuple of hidden-layer widths per model.
        activation: the hidden layers' activation, or several (one model per activation and
            widths).
    """

    hidden: tuple[tuple[int, ...], ...] = ((2,), (3,), (4,), (6,))
    activation: str | tuple[str, ...] = "tanh"

    @property
    def activations(self) -> tuple[str, ...]:
        """The activations as a tuple (one entry for a single activation)."""
        return (self.activation,) if isinstance(self.activation, str) else self.activation


@dataclass(frozen=True)
class TrainConfig:
    """Training before the search: one run per entry of ``steps`` (0 = the initialisation).

    Attributes:
        optimizer: "adam", "sgd" or "lbfgs".
        lr: the learning rate.
        steps: training steps, one run per entry.
        batch_size: minibatch size (0: full batch).
    """

    optimizer: str = "adam"
    lr: float = 0.01
    steps: tuple[int, ...] = (0, 25, 250, 2500)
    batch_size: int = 0  # 0: full batch


@dataclass(frozen=True)
class SearchConfig:
    """The critical-point search (see :func:`saddlescope.find_critical_point`).

    Attributes:
        method: "auto" (the switching driver), "lm", "newton-mr", "newton-tr" or "gradnorm".
        grad_tol: ‖∇L‖ at or below which θ is critical (default: float64's).
        max_steps: the search's iterations at most.
        max_hvps: the search's Hessian-vector products at most (0: no limit). There is no
            budget in seconds here: a record must not depend on the machine that made it.
        gradnorm_phase: the source's protocol (NTU HW1-2): this many Adam steps on ½‖∇L‖²
            (learning rate ``train.lr``) before the search, whose end point's naive minimum
            ratio (eig > 0, float32 and float64) the record keeps (0: none).
    """

    method: str = "auto"
    grad_tol: float = default_grad_tol(_DTYPE)
    max_steps: int = 500
    max_hvps: int = 0
    gradnorm_phase: int = 0


@dataclass(frozen=True)
class SpectrumConfig:
    """Classification: eigenvalue tolerance, dense-Hessian budget, the loss's lower bound.

    Attributes:
        rtol: the zero band relative to max|λ| (default: float64's).
        atol: the zero band's absolute floor.
        memory_budget: bytes the dense Hessian may take.
        loss_lower_bound: the loss's lower bound (settles degenerate minima), or None.
    """

    rtol: float = default_rtol(_DTYPE)
    atol: float = Tolerance.resolve(_DTYPE).atol
    memory_budget: int = 2 * 1024**3
    loss_lower_bound: float | None = 0.0  # squared error ≥ 0; "none" in TOML for no bound


@dataclass(frozen=True)
class RunSpec:
    """One run of a study: everything that determines its record.

    Attributes:
        study: the study's name (not part of :attr:`run_id`).
        config_hash: the study's config hash (not part of :attr:`run_id`).
        data: the dataset.
        hidden: the model's hidden-layer widths.
        activation: the hidden layers' activation.
        train: training, with a single entry in ``steps``.
        search: the critical-point search.
        spectrum: the classification's settings.
        seed: the run's seed (initialisation, minibatches).
        device: where it runs, "cpu" or "cuda" (set by the executor; not part of
            :attr:`run_id`: a run on a GPU agrees with the CPU's to rounding).
    """

    study: str
    config_hash: str
    data: DataConfig
    hidden: tuple[int, ...]
    activation: str
    train: TrainConfig  # with a single entry in ``steps``
    search: SearchConfig
    spectrum: SpectrumConfig
    seed: int
    device: str = "cpu"

    @property
    def train_steps(self) -> int:
        """The number of training steps before the search (the single entry of ``train.steps``)."""
        return self.train.steps[0]

    @property
    def tolerance(self) -> Tolerance:
        """The run's tolerance: the search's ``grad_tol``, the spectrum's ``rtol`` and ``atol``."""
        return Tolerance(self.search.grad_tol, self.spectrum.rtol, self.spectrum.atol)

    @cached_property
    def run_id(self) -> str:
        """Hash of everything that determines the record: not the study's name, not versions."""
        where = ("study", "config_hash", "device")
        settings = {k: v for k, v in plain(self).items() if k not in where}
        return short_hash(identity(settings))

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON-able values (:meth:`from_dict` rebuilds it)."""
        return plain(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunSpec:
        """Rebuild a spec from :meth:`to_dict`'s output (e.g. read back from a results file).

        Args:
            raw: the nested dict; a malformed one raises :class:`InvalidInputError`.
        """
        try:
            spec = cls(
                study=str(raw["study"]),
                config_hash=str(raw["config_hash"]),
                data=DataConfig(**raw["data"]),
                hidden=tuple(raw["hidden"]),
                activation=str(raw["activation"]),
                train=TrainConfig(**{**raw["train"], "steps": tuple(raw["train"]["steps"])}),
                search=SearchConfig(**raw["search"]),
                spectrum=SpectrumConfig(**raw["spectrum"]),
                seed=int(raw["seed"]),
                device=str(raw.get("device", "cpu")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInputError(f"not a readable run spec ({err!r})") from None
        spec.validate()
        return spec

    def validate(self) -> None:
        """Check every section as a config is checked, sizes included.

        A spec read back from a file is untrusted: a crafted one must not allocate or run.
        """
        validate_data(self.data)
        validate_model(ModelConfig(hidden=(self.hidden,), activation=self.activation))
        validate_train(self.train)
        validate_search(self.search)
        validate_spectrum(self.spectrum)
        check_int("the run's seed", self.seed, 0)
        if self.device not in ("cpu", "cuda"):
            raise InvalidInputError(f"a run's device is 'cpu' or 'cuda', got {self.device!r}")


@dataclass(frozen=True)
class StudyConfig:
    """A whole study: ``seeds`` runs for every (hidden widths, training steps) pair.

    Attributes:
        name: the study's name.
        seeds: runs per (hidden widths, training steps) pair.
        data: the dataset.
        model: the model family.
        train: training before the search.
        search: the critical-point search.
        spectrum: the classification's settings.
        gpus_per_run: Ray backend: the GPUs each run asks Ray for (0: none; a fraction shares
            one). A run that gets one trains and analyses on it; on a cluster without GPUs the
            request is dropped and the runs take the CPU. Not in :attr:`config_hash`: where a
            run executes does not name it.
    """

    name: str = "default"
    seeds: int = 12
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    spectrum: SpectrumConfig = field(default_factory=SpectrumConfig)
    gpus_per_run: float = 0.0

    @property
    def config_hash(self) -> str:
        """Hash of everything but the name, the number of seeds and the GPUs asked for."""
        where = ("name", "seeds", "gpus_per_run")
        return short_hash(identity({k: v for k, v in plain(self).items() if k not in where}))

    def runs(self) -> list[RunSpec]:
        """All runs, seed-major so that a partial study (``--runs N``) covers every variant."""
        out = []
        for seed in range(self.seeds):
            for activation in self.model.activations:
                for hidden in self.model.hidden:
                    out += [
                        self._spec(seed, activation, hidden, steps) for steps in self.train.steps
                    ]
        return out

    def _spec(self, seed: int, activation: str, hidden: tuple[int, ...], steps: int) -> RunSpec:
        return RunSpec(
            study=self.name,
            config_hash=self.config_hash,
            data=self.data,
            hidden=hidden,
            activation=activation,
            train=dataclasses.replace(self.train, steps=(steps,)),
            search=self.search,
            spectrum=self.spectrum,
            seed=seed,
        )

    def num_params(self, hidden: tuple[int, ...]) -> int:
        """The parameter count of the study's model with these hidden widths.

        Args:
            hidden: the hidden-layer widths.
        """
        d_in, d_out = _io_sizes(self.data)
        return num_params(d_in, hidden, d_out)

    def to_dict(self) -> dict[str, Any]:
        """The config as nested plain dicts and lists (the shape of its TOML file)."""
        return plain(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> StudyConfig:
        """Build and validate a config from nested dicts (as parsed from TOML).

        Args:
            raw: the config's tables by name; unknown keys raise, naming the key.
        """
        if not isinstance(raw, dict):
            raise InvalidInputError("a study config must be a table of keys")
        sections = {
            "data": DataConfig,
            "model": ModelConfig,
            "train": TrainConfig,
            "search": SearchConfig,
            "spectrum": SpectrumConfig,
        }
        _no_unknown(raw, {"name", "seeds", "gpus_per_run", *sections}, "")
        built: dict[str, Any] = {}
        for key in ("name", "seeds", "gpus_per_run"):
            if key in raw:
                built[key] = raw[key]
        for key, section_cls in sections.items():
            values = raw.get(key, {})
            if not isinstance(values, dict):
                raise InvalidInputError(f"config key '{key}' must be a table, got {values!r}")
            _no_unknown(values, {f.name for f in dataclasses.fields(section_cls)}, f"{key}.")
            built[key] = section_cls(**_coerce(section_cls, values, key))
        config = cls(**built)
        config.validate()
        return config

    def validate(self) -> None:
        """Raise :class:`InvalidInputError` naming the first key that cannot work."""
        if not isinstance(self.name, str) or not _SAFE_NAME.fullmatch(self.name):
            raise InvalidInputError(
                f"config key 'name' must be a plain file name of 1–100 letters, digits, '.', '_' "
                f"or '-' (it names OUT/NAME.db, which must stay inside --out), got {self.name!r}"
            )
        check_int("config key 'seeds'", self.seeds, 1)
        if self.seeds > MAX_SEEDS:
            raise InvalidInputError(
                f"config key 'seeds' = {self.seeds:,} is over {MAX_SEEDS:,}; a study that large "
                "is not what this tool is for (split it into several configs)"
            )
        gpus = self.gpus_per_run
        if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or not 0 <= gpus <= 64:
            raise InvalidInputError(
                f"config key 'gpus_per_run' must be a number from 0 to 64, got {gpus!r}"
            )
        validate_data(self.data)
        validate_model(self.model)
        validate_train(self.train)
        validate_search(self.search)
        validate_spectrum(self.spectrum)
        for widths in self.model.hidden:
            n = self.num_params(widths)
            need = n * n * 8
            if need > self.spectrum.memory_budget:
                raise InvalidInputError(
                    f"config key 'model.hidden': the model {list(widths)} has {n:,} parameters; "
                    f"its dense float64 Hessian needs {need:,} bytes, over spectrum.memory_budget "
                    f"= {self.spectrum.memory_budget:,}; the survey needs every eigenvalue, so use "
                    "smaller widths or raise spectrum.memory_budget"
                )


def load_config(path: str | Path) -> StudyConfig:
    """Read and validate a study config from a TOML file.

    Args:
        path: the TOML file.
    """
    path = Path(path)
    if not path.exists():
        raise InvalidInputError(f"no config file at {path}")
    if not path.is_file():  # a folder, a FIFO (reading it would wait for ever), a device
        raise InvalidInputError(f"config {path} is not a regular file")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise InvalidInputError(f"config {path} is over {MAX_CONFIG_BYTES:,} bytes: not a config")
    try:
        raw = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InvalidInputError(f"config {path} is not UTF-8 text ({err.reason})") from None
    except tomllib.TOMLDecodeError as err:
        raise InvalidInputError(f"{path} is not valid TOML: {err}") from None
    if not raw:
        raise InvalidInputError(
            f"config {path} is empty; the default study runs with no config argument"
        )
    return StudyConfig.from_dict(raw)


def default_config() -> StudyConfig:
    """The default study shipped with saddlescope (``survey/default.toml``)."""
    text = resources.files("saddlescope.survey").joinpath("default.toml").read_text()
    return StudyConfig.from_dict(tomllib.loads(text))


# ----------------------------------------------------------------------------------- helpers
def _io_sizes(d: DataConfig) -> tuple[int, int]:
    if d.name == "digits":
        return (8 // d.pool) ** 2, d.classes
    if d.name == "teacher-student":
        return d.d_in, d.d_out
    return 1, 1


def _no_unknown(values: dict[str, Any], known: set[str], prefix: str) -> None:
    unknown = sorted(set(values) - known)
    if unknown:
        raise InvalidInputError(
            f"unknown config key '{prefix}{unknown[0]}'; known keys"
            f"{' in [' + prefix[:-1] + ']' if prefix else ''}: {', '.join(sorted(known))}"
        )


def _coerce(section_cls: type, values: dict[str, Any], section: str) -> dict[str, Any]:
    out = dict(values)
    if section_cls is ModelConfig and "hidden" in out:
        hidden = out["hidden"]
        if not isinstance(hidden, list) or not all(isinstance(h, list) for h in hidden):
            raise InvalidInputError(
                "config key 'model.hidden' must be a list of lists of widths, e.g. [[4], [8, 8]]"
            )
        out["hidden"] = tuple(tuple(h) for h in hidden)
    if section_cls is ModelConfig and isinstance(out.get("activation"), list):
        out["activation"] = tuple(out["activation"])
    if section_cls is TrainConfig and "steps" in out:
        steps = out["steps"]
        out["steps"] = tuple(steps) if isinstance(steps, list) else (steps,)
    if section_cls is SpectrumConfig and out.get("loss_lower_bound") == "none":
        out["loss_lower_bound"] = None
    return out
