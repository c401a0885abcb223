"""One run's result: its spec and everything the run found, as a frozen record.

A record keeps what later stages need so that they recompute nothing they can read: the spec
(to rebuild the objective), the tolerance and the verdict (kind, inertia, threshold), every
eigenvalue, the final θ and the escape direction. The library versions that produced it are
kept beside it (provenance), never in its identity.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from saddlescope.survey.config import RunSpec
from saddlescope.tolerance import Inertia, Tolerance

__all__ = ["TIMING_FIELDS", "SurveyRecord", "Verdict", "library_versions"]

TIMING_FIELDS = ("seconds_train", "seconds_search", "seconds_spectrum")


def library_versions() -> dict[str, str]:
    """The versions that produced a record: saddlescope, torch, numpy, scipy and Python."""
    import scipy
    import torch

    from saddlescope import __version__

    return {
        "saddlescope": __version__,
        "torch": str(torch.__version__),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": platform.python_version(),
    }


@dataclass(frozen=True)
class Verdict:
    """What a classification decided: kind, strictness, inertia and the zero band's threshold.

    Attributes:
        kind: "minimum", "maximum", "saddle", "degenerate", "on-kink" or "not-critical".
        strict: whether the kind holds strictly (None where it does not apply).
        inertia: (n₋, n₀, n₊) at the threshold.
        threshold: the zero band's half-width: |λ| ≤ threshold counts as zero.
    """

    kind: str
    strict: bool | None
    inertia: Inertia
    threshold: float

    @classmethod
    def of(cls, point: Any) -> Verdict:
        """The verdict of a :class:`~saddlescope.CriticalPoint` (or anything with its fields).

        Args:
            point: a classified point with ``kind``, ``strict``, ``inertia`` and ``threshold``.
        """
        return cls(point.kind, point.strict, point.inertia, float(point.threshold))

    def to_dict(self) -> dict[str, Any]:
        """Kind, strictness, inertia (as a dict) and threshold."""
        return {
            "kind": self.kind,
            "strict": self.strict,
            "inertia": self.inertia.to_dict(),
            "threshold": self.threshold,
        }

    def __str__(self) -> str:
        return f"{self.kind} {self.inertia}, zero band |λ| ≤ {self.threshold:.3g}"


@dataclass(frozen=True, eq=False)
class SurveyRecord:
    """Training, the critical-point search and the verdict, for one (model, steps, seed) run.

    Attributes:
        spec: the run (:class:`RunSpec`): its identity and how to rebuild its objective.
        num_params: the model's parameter count n.
        loss_trained: the loss where training stopped (the search's start).
        loss_critical: the loss where the search ended.
        grad_norm: ‖∇L‖ where the search ended.
        converged: the search reached ‖∇L‖ ≤ grad_tol.
        gradient_flat: the search stalled with the gradient nearly in H's null space.
        status: why the search ended ("converged", "on-kink", "gradient-flat", "stalled",
            "max-steps", "max-hvps").
        search_steps: the search's iterations.
        hvps: Hessian-vector products of the search and the spectrum.
        flatness: where the search ended unconverged, the share of ∇L in H's zero band
            (:mod:`saddlescope.flatness`; None when not measured). Records from files of schema
            2 and earlier hold ‖H·p + g‖/‖g‖ (p the MINRES step) here instead.
        kind: the verdict ("minimum", "saddle", …).
        strict: whether the kind holds strictly (None where it does not apply).
        tolerance: the tolerance the verdict was made with.
        threshold: the zero band's half-width max(atol, rtol·max|λ|).
        inertia: exact (n₋, n₀, n₊) at the threshold.
        eigenvalues: every Hessian eigenvalue at the final θ, ascending.
        theta: the parameters where the search ended.
        escape_direction: the unit direction of decrease (None when there is none, or in a
            record migrated from a file that did not keep it).
        escape_curvature: the curvature along ``escape_direction`` (None likewise).
        seconds_train: wall time of training.
        seconds_search: wall time of the search.
        seconds_spectrum: wall time of the classification.
        versions: the library versions that produced it (empty when unknown).
        search: the search's evidence, as plain values: ``phases`` (each method and its
            steps), ``crossings`` (activation boundaries crossed; None when smooth),
            ``flatness`` (the :class:`~saddlescope.flatness.Flatness` as a dict: share and
            bounds, ‖Hg‖/‖g‖, the zero band, the cutoff, the status) and ``kink`` (the
            :class:`~saddlescope.nonsmooth.KinkCheck` of an unconverged end); empty in
            records written before schema 3.
    """

    spec: RunSpec
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
    tolerance: Tolerance
    threshold: float
    inertia: Inertia
    eigenvalues: np.ndarray
    theta: np.ndarray
    escape_direction: np.ndarray | None
    escape_curvature: float | None
    seconds_train: float
    seconds_search: float
    seconds_spectrum: float
    versions: dict[str, str] = field(default_factory=dict)
    search: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------- derived from the spec
    @property
    def run_id(self) -> str:
        """The run's identity: the hash of its spec (see :attr:`RunSpec.run_id`)."""
        return self.spec.run_id

    @property
    def study(self) -> str:
        """The name of the study the run was part of."""
        return self.spec.study

    @property
    def config_hash(self) -> str:
        """The hash of the study's config (its stored config rebuilds the whole study)."""
        return self.spec.config_hash

    @property
    def seed(self) -> int:
        """The run's seed (model initialisation, minibatches)."""
        return self.spec.seed

    @property
    def hidden(self) -> str:
        """The hidden widths as text, e.g. "4" or "6-6"."""
        return "-".join(map(str, self.spec.hidden))

    @property
    def activation(self) -> str:
        """The hidden layers' activation."""
        return self.spec.activation

    @property
    def train_steps(self) -> int:
        """Training steps before the search."""
        return self.spec.train_steps

    # ---------------------------------------------------------- derived from the inertia
    @property
    def index(self) -> float:
        """n₋/n, the fraction of negative eigenvalues."""
        return float(self.inertia.index)

    @property
    def minimum_ratio(self) -> float:
        """n₊/n, the fraction of positive eigenvalues."""
        return float(self.inertia.minimum_ratio)

    @property
    def verdict(self) -> Verdict:
        """The stored verdict: kind, strictness, inertia, threshold."""
        return Verdict(self.kind, self.strict, self.inertia, self.threshold)

    @property
    def usable(self) -> bool:
        """Converged to a critical point off kinks (not gradient-flat): shown in figures."""
        return self.converged and not self.gradient_flat and self.kind != "on-kink"

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-able values, with the spec's identity fields alongside."""
        direction = self.escape_direction
        return {
            "run_id": self.run_id,
            "study": self.study,
            "config_hash": self.config_hash,
            "seed": self.seed,
            "hidden": self.hidden,
            "activation": self.activation,
            "train_steps": self.train_steps,
            "num_params": self.num_params,
            "loss_trained": self.loss_trained,
            "loss_critical": self.loss_critical,
            "grad_norm": self.grad_norm,
            "converged": self.converged,
            "gradient_flat": self.gradient_flat,
            "status": self.status,
            "search_steps": self.search_steps,
            "hvps": self.hvps,
            "flatness": self.flatness,
            "kind": self.kind,
            "strict": self.strict,
            "tolerance": self.tolerance.to_dict(),
            "threshold": self.threshold,
            "inertia": self.inertia.to_dict(),
            "index": self.index,
            "minimum_ratio": self.minimum_ratio,
            "eigenvalues": self.eigenvalues.tolist(),
            "theta": self.theta.tolist(),
            "escape_direction": None if direction is None else direction.tolist(),
            "escape_curvature": self.escape_curvature,
            "spec": self.spec.to_dict(),
            "versions": dict(self.versions),
            "search": dict(self.search),
            **{name: getattr(self, name) for name in TIMING_FIELDS},
        }

    def result_dict(self) -> dict[str, Any]:
        """Everything but timings and versions: what must be identical across workers/backends."""
        skip = {*TIMING_FIELDS, "versions"}
        return {k: v for k, v in self.to_dict().items() if k not in skip}

    def __str__(self) -> str:
        return (
            f"run {self.run_id} [{self.hidden}, {self.train_steps} steps, seed {self.seed}]: "
            f"{self.status}, loss {self.loss_critical:.4g}, ‖g‖ {self.grad_norm:.2g}, {self.kind}, "
            f"minimum ratio {self.minimum_ratio:.3f}"
        )
