"""One run's result: a frozen record, the row the store keeps."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TIMING_FIELDS", "SurveyRecord"]

TIMING_FIELDS = ("seconds_train", "seconds_search", "seconds_spectrum")


@dataclass(frozen=True, eq=False)
class SurveyRecord:
    """Training, the critical-point search and the verdict, for one (model, steps, seed) run."""

    run_id: str
    study: str
    config_hash: str
    seed: int
    hidden: str  # e.g. "4" or "6-6"
    activation: str
    train_steps: int
    num_params: int
    loss_trained: float
    loss_critical: float
    grad_norm: float
    converged: bool
    gradient_flat: bool
    status: str
    search_steps: int
    hvps: int
    flatness: float | None
    kind: str
    strict: bool | None
    n_pos: int
    n_neg: int
    n_zero: int
    index: float
    minimum_ratio: float
    tolerance: float
    eigenvalues: np.ndarray
    theta: np.ndarray  # the parameters where the search ended
    seconds_train: float
    seconds_search: float
    seconds_spectrum: float

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["eigenvalues"] = self.eigenvalues.tolist()
        d["theta"] = self.theta.tolist()
        return d

    def result_dict(self) -> dict[str, Any]:
        """Everything but the timings: what must be identical across workers and backends."""
        return {k: v for k, v in self.to_dict().items() if k not in TIMING_FIELDS}

    @property
    def usable(self) -> bool:
        """Converged to a critical point (not gradient-flat): shown in figures by default."""
        return self.converged and not self.gradient_flat

    def __str__(self) -> str:
        return (
            f"run {self.run_id} [{self.hidden}, {self.train_steps} steps, seed {self.seed}]: "
            f"{self.status}, loss {self.loss_critical:.4g}, ‖g‖ {self.grad_norm:.2g}, {self.kind}, "
            f"minimum ratio {self.minimum_ratio:.3f}"
        )
