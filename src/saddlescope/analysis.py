"""One analysis of a trained model at θ: the verdict, its spectrum, its density, its way down.

:func:`analyze` is what ``saddlescope analyze`` runs on a user's model: :func:`classify` (its path
chosen by estimated time, with progress), the spectral density (exact from a complete spectrum,
else by stochastic Lanczos quadrature), and the loss along the escape direction beside its
quadratic model. :class:`Analysis` holds it, and :meth:`Analysis.to_dict` is the record that
``--json`` writes and the HTML report (:mod:`saddlescope.report`) renders.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import torch
from torch import Tensor

from saddlescope.classify import classify
from saddlescope.cost import DEFAULT_MAX_DENSE_SECONDS
from saddlescope.critical_point import CriticalPoint
from saddlescope.landscape import Line, line
from saddlescope.objective import Objective
from saddlescope.progress import ProgressOption, product_progress
from saddlescope.slq import SpectralDensity, slq

__all__ = ["FORMAT", "Analysis", "analyze"]

FORMAT = "saddlescope.analysis/1"
_GRID = 400  # density grid points
_DENSITY_PROBES, _DENSITY_STEPS = 4, 80


@dataclass(frozen=True, eq=False)
class Analysis:
    """What :func:`analyze` found at θ.

    Attributes:
        critical_point: the verdict (:class:`~saddlescope.CriticalPoint`).
        density: (grid, density) of the Hessian's eigenvalues, or None.
        density_source: "eigenvalues" (exact, Gaussian-smoothed) or "slq" (with probes and
            steps in ``density_work``), or None.
        density_work: (probes, lanczos_steps, hvps) of an SLQ density, else None.
        landscape: the loss along the escape direction (a :class:`~saddlescope.landscape.Line`
            in units of the unit direction), or None.
        slope: gᵀu, the loss's slope along the escape direction u at θ (for the quadratic model
            L + t·gᵀu + ½λt² drawn beside the landscape).
        stages: (name, seconds) of each stage, in order.
        source: what the model, data and checkpoint were (for the record; free text).
    """

    critical_point: CriticalPoint
    density: tuple[Tensor, Tensor] | None
    density_source: str | None
    density_work: tuple[int, int, int] | None
    landscape: Line | None
    slope: float
    stages: tuple[tuple[str, float], ...]
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The record (format :data:`FORMAT`): plain JSON-able values, no θ."""
        cp = self.critical_point
        return {
            "format": FORMAT,
            "saddlescope_version": _version(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "model": self.source.get("model"),
            "data": self.source.get("data"),
            "objective": cp.objective,
            "verdict": _verdict(cp),
            "extremes": _extremes(cp),
            "path": _path(cp),
            "escape": _escape(cp),
            "density": self._density_record(),
            "landscape": self._landscape_record(),
            "stages": [{"name": n, "seconds": s} for n, s in self.stages],
        }

    def _density_record(self) -> dict[str, Any] | None:
        if self.density is None:
            return None
        grid, values = self.density
        probes, steps, hvps = self.density_work or (None, None, 0)
        return {
            "grid": grid.tolist(),
            "values": values.tolist(),
            "source": self.density_source,
            "probes": probes,
            "lanczos_steps": steps,
            "hvps": hvps,
        }

    def _landscape_record(self) -> dict[str, Any] | None:
        cp, ln = self.critical_point, self.landscape
        if ln is None or cp.escape_direction is None:
            return None
        curvature = cp.escape_curvature or 0.0
        t = ln.alphas
        quadratic = cp.loss + self.slope * t + 0.5 * curvature * t * t
        return {"t": t.tolist(), "loss": ln.losses.tolist(), "quadratic": quadratic.tolist()}

    def __str__(self) -> str:
        lines = [str(self.critical_point)]
        if self.density_source is not None:
            lines.append(f"  density from {self.density_source}")
        lines.append("  stages: " + ", ".join(f"{n} {s:.2f} s" for n, s in self.stages))
        return "\n".join(lines)


def analyze(
    obj: Objective,
    theta: Tensor | None = None,
    *,
    k: int | None = None,
    density: bool = True,
    landscape: bool = True,
    max_dense_seconds: float = DEFAULT_MAX_DENSE_SECONDS,
    progress: ProgressOption = None,
    seed: int = 0,
    source: dict[str, Any] | None = None,
) -> Analysis:
    """Classify θ and describe its neighbourhood: spectrum, spectral density, the way down.

    Args:
        obj: the objective.
        theta: the parameters (default: the model's own, ``obj.theta0``).
        k: extreme eigenpairs per end by Lanczos; None (default) chooses dense or Lanczos by
            estimated time (see :func:`~saddlescope.classify`).
        density: also estimate the spectral density (free from a complete spectrum; else
            4 SLQ probes × 80 Lanczos steps).
        landscape: also evaluate the loss along the escape direction (41 points).
        max_dense_seconds: see :func:`~saddlescope.classify`.
        progress: progress bars, as for :func:`~saddlescope.classify`.
        seed: seeds every random choice.
        source: what the model and data were, kept in the record as given.
    """
    theta = obj.theta0 if theta is None else obj.check_theta(theta)
    stages: list[tuple[str, float]] = []
    with _stage(stages, "classify"):
        cp = classify(
            obj, theta, k=k, max_dense_seconds=max_dense_seconds, progress=progress, seed=seed
        )
    sd, source_kind, work = None, None, None
    if density:
        with _stage(stages, "density"):
            sd, source_kind, work = _density(obj, cp, progress, seed)
    ln, slope = None, 0.0
    if landscape and cp.escape_direction is not None:
        with _stage(stages, "landscape"):
            ln = _landscape(obj, cp)
            slope = float(obj.grad(cp.theta) @ cp.escape_direction.to(obj.dtype))
    return Analysis(cp, sd, source_kind, work, ln, slope, tuple(stages), dict(source or {}))


@contextmanager
def _stage(stages: list[tuple[str, float]], name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    stages.append((name, time.perf_counter() - start))


def _density(
    obj: Objective, cp: CriticalPoint, progress: ProgressOption, seed: int
) -> tuple[tuple[Tensor, Tensor], str, tuple[int, int, int] | None]:
    spectrum = cp.spectrum
    if spectrum.complete:
        lam = spectrum.eigenvalues
        width = float(lam.max() - lam.min()) or max(1.0, float(lam.abs().max()))
        grid = _grid(float(lam.min()), float(lam.max()), width)
        return (grid, _smoothed(lam, grid, width / 200)), "eigenvalues", None
    op = obj.hessian_operator(cp.theta)
    steps = min(_DENSITY_STEPS, obj.num_params)
    total = _DENSITY_PROBES * steps
    t = None if cp.path is None else cp.path.product_seconds
    expected = None if t is None else total * t
    with product_progress(op, total, "spectral density", show=progress, expected_seconds=expected):
        sd: SpectralDensity = slq(op, lanczos_steps=steps, probes=_DENSITY_PROBES, seed=seed)
    held = sd.nodes[sd.weights > 0]
    lo, hi = float(held.min()), float(held.max())
    grid = _grid(lo, hi, (hi - lo) or 1.0)
    return (grid, sd.density(grid)), "slq", (sd.probes, sd.lanczos_steps, sd.hvps)


def _grid(lo: float, hi: float, width: float) -> Tensor:
    return torch.linspace(lo - 0.05 * width, hi + 0.05 * width, _GRID, dtype=torch.float64)


def _smoothed(lam: Tensor, grid: Tensor, sigma: float) -> Tensor:
    """(1/n) Σ N(x; λ_i, σ²): the eigenvalues as a density (∫ = 1)."""
    z = (grid[:, None] - lam[None, :]) / sigma
    return torch.exp(-0.5 * z**2).sum(dim=1) / (lam.numel() * sigma * math.sqrt(2 * math.pi))


def _landscape(obj: Objective, cp: CriticalPoint) -> Line:
    """The loss along the unit escape direction over ±T, ½|λ|T² = 10 % of max(|L|, 1e-3)."""
    assert cp.escape_direction is not None
    lam = abs(cp.escape_curvature or 0.0) or 1.0
    span = math.sqrt(0.2 * max(abs(cp.loss), 1e-3) / lam)
    ts = torch.linspace(-span, span, 41, dtype=torch.float64)
    return line(obj, cp.theta, cp.escape_direction, ts)


def _verdict(cp: CriticalPoint) -> dict[str, Any]:
    inertia = cp.inertia
    return {
        "kind": cp.kind,
        "strict": cp.strict,
        "resolution": cp.resolution,
        "loss": cp.loss,
        "grad_norm": cp.grad_norm,
        "tolerance": cp.tolerance.to_dict(),
        "threshold": cp.threshold,
        "index": cp.index,
        "index_err": None if inertia is None or not inertia.estimated else inertia.index_err,
        "minimum_ratio": cp.minimum_ratio,
        "minimum_ratio_err": None
        if inertia is None or not inertia.estimated
        else inertia.minimum_ratio_err,
        "is_estimate": cp.is_estimate,
        "confidence": None if inertia is None else inertia.confidence,
        "inertia": None
        if inertia is None
        else {"n_neg": inertia.n_neg, "n_zero": inertia.n_zero, "n_pos": inertia.n_pos},
    }


def _extremes(cp: CriticalPoint, per_end: int = 6) -> list[dict[str, Any]]:
    s = cp.spectrum
    lam = s.eigenvalues.tolist()
    res = None if s.residuals is None else s.residuals.tolist()
    count = len(lam)
    half = (count + 1) // 2
    ends = [("lowest", i) for i in range(min(per_end, half))]
    ends += [("highest", i) for i in range(max(half, count - per_end), count)]
    return [
        {"end": e, "value": lam[i], "residual": None if res is None else res[i]} for e, i in ends
    ]


def _path(cp: CriticalPoint) -> dict[str, Any]:
    s = cp.spectrum
    why = "k extreme pairs asked for" if cp.path is None else cp.path.reason
    return {"method": s.method, "why": why, "hvps": s.hvps, "complete": s.complete}


def _escape(cp: CriticalPoint) -> dict[str, Any] | None:
    if cp.escape_direction is None:
        return None
    return {
        "curvature": cp.escape_curvature,
        "predicted_decrease_at_unit_step": cp.predicted_decrease(1.0),
        "higher_order": cp.escape_curvature is None,
    }


def _version() -> str:
    try:
        return version("saddlescope")
    except PackageNotFoundError:
        return "unknown"
