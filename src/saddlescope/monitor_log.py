"""One curvature check of a training run (:class:`CurvatureCheck`) and where checks are logged.

:class:`CheckLog` writes each check to a TensorBoard ``SummaryWriter`` (``curvature/*`` scalars,
the Ritz values as a histogram) and to a CSV file, one row per check. A resumed run first drops
the CSV rows of checks after the step it resumes from, so a crash between a checkpoint and the
next one leaves no row written twice. The CSV file is read only as data (numbers and words).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from torch import Tensor

from saddlescope.errors import InvalidInputError
from saddlescope.files import atomic_path

__all__ = ["CheckLog", "CurvatureCheck"]


@dataclass(frozen=True)
class CurvatureCheck:
    """A curvature check during training.

    Attributes:
        step: the training step it ran after.
        reason: "plateau", "every" (N steps passed) or "asked".
        verdict: "stalled-at-saddle", "stalled-at-minimum" or "not-stalled".
        loss: L on the monitor's data.
        grad_norm: ‖∇L‖ there.
        lambda_min: the smallest Hessian eigenvalue (Lanczos).
        lambda_max: the largest.
        residual_min: ‖Hu − λu‖ of λ_min's Ritz pair.
        residual_max: the same for λ_max.
        threshold: the zero band's half-width at this check (rtol·max|λ|).
        ritz_steps: the Lanczos steps (one product each).
        hvps: Hessian-vector products the check spent (Lanczos, and the inertia estimate).
        seconds: its wall-clock time.
        warm: True when Lanczos started from the previous check's Ritz vectors.
        predicted_decrease: when λ_min < −threshold: the quadratic model's decrease for a unit
            step along ``escape_direction``, |gᵀu| + ½|λ_min|.
        index: the index (share of eigenvalues below −threshold), when estimated.
        index_err: its error bar.
        minimum_ratio: the share above +threshold, when estimated.
        minimum_ratio_err: its error bar.
        escape_direction: the unit eigenvector of λ_min, signed downhill (gᵀu ≤ 0), when
            λ_min < −threshold; not in :meth:`to_dict`.
    """

    step: int
    reason: str
    verdict: str
    loss: float
    grad_norm: float
    lambda_min: float
    lambda_max: float
    residual_min: float
    residual_max: float
    threshold: float
    ritz_steps: int
    hvps: int
    seconds: float
    warm: bool
    predicted_decrease: float | None = None
    index: float | None = None
    index_err: float | None = None
    minimum_ratio: float | None = None
    minimum_ratio_err: float | None = None
    escape_direction: Tensor | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Every field but the escape direction."""
        d = asdict(self)
        d.pop("escape_direction")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CurvatureCheck:
        """The check from :meth:`to_dict` (its escape direction is not kept).

        Args:
            d: a dict from :meth:`to_dict`.
        """
        if not isinstance(d, dict) or set(d) != set(_ROW_FIELDS):
            raise InvalidInputError("not a CurvatureCheck dict: its keys differ from the fields")
        return cls(**d)

    def metrics(self) -> dict[str, float]:
        """The numbers a logger plots, as ``curvature/<name>`` (the ones that were measured)."""
        names = (
            "loss", "grad_norm", "lambda_min", "lambda_max", "residual_min", "residual_max",
            "hvps", "predicted_decrease", "index", "minimum_ratio",
        )  # fmt: skip
        out = {f"curvature/{k}": getattr(self, k) for k in names}
        out["curvature/stalled_at_saddle"] = self.verdict == "stalled-at-saddle"
        out["curvature/stalled_at_minimum"] = self.verdict == "stalled-at-minimum"
        return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(v)}

    def __str__(self) -> str:
        bars = ""
        if self.index is not None:
            bars = f", index {self.index:.3g} ± {self.index_err:.2g}"
        way = ""
        if self.predicted_decrease is not None:
            way = f"; a unit step along λ_min's vector lowers L by {self.predicted_decrease:.3g}"
        return (
            f"step {self.step} ({self.reason}): {self.verdict}, loss {self.loss:.6g}, "
            f"‖g‖ {self.grad_norm:.2e}, λ_min {self.lambda_min:.4g} (±{self.residual_min:.1e}), "
            f"λ_max {self.lambda_max:.4g} (±{self.residual_max:.1e}){bars}{way} "
            f"[{self.hvps} HVPs, {'warm' if self.warm else 'cold'}]"
        )


_ROW_FIELDS = [f.name for f in fields(CurvatureCheck) if f.name != "escape_direction"]


class CheckLog:
    """Where checks go: a TensorBoard writer and/or a CSV file (either may be None).

    Args:
        writer: anything with ``add_scalar(tag, value, step)`` and ``add_histogram(tag,
            values, step)``, e.g. ``torch.utils.tensorboard.SummaryWriter``.
        csv_path: the CSV file (created with a header; appended to).
    """

    def __init__(self, writer: Any = None, csv_path: str | Path | None = None) -> None:
        if writer is not None and not all(
            callable(getattr(writer, m, None)) for m in ("add_scalar", "add_histogram")
        ):
            raise InvalidInputError(
                "writer must have add_scalar and add_histogram (a SummaryWriter), got "
                f"{type(writer).__name__}"
            )
        self.writer = writer
        self.csv_path = None if csv_path is None else Path(csv_path)

    def write(self, check: CurvatureCheck, ritz_values: Tensor | None) -> None:
        """Log one check.

        Args:
            check: the check.
            ritz_values: every Ritz value of its Lanczos run (the histogram), or None.
        """
        if self.writer is not None:
            for tag, value in check.metrics().items():
                self.writer.add_scalar(tag, value, check.step)
            if ritz_values is not None and ritz_values.numel():
                self.writer.add_histogram("curvature/ritz_values", ritz_values, check.step)
        if self.csv_path is not None:
            row = check.to_dict()
            new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
            with open(self.csv_path, "a", newline="") as f:
                out = csv.DictWriter(f, fieldnames=list(row))
                if new:
                    out.writeheader()
                out.writerow(row)
                f.flush()
                os.fsync(f.fileno())

    def resume_after(self, step: int) -> None:
        """Drop CSV rows of checks after ``step`` (written after the state a run resumes from)."""
        if self.csv_path is None or not self.csv_path.exists():
            return
        with open(self.csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
        try:
            keep = [r for r in rows if int(r["step"]) <= step]
        except (KeyError, TypeError, ValueError):
            raise InvalidInputError(
                f"{self.csv_path} is not a curvature log (no integer 'step' column); give "
                "another csv_path"
            ) from None
        with atomic_path(self.csv_path) as tmp, open(tmp, "w", newline="") as f:
            out = csv.DictWriter(f, fieldnames=_ROW_FIELDS, extrasaction="ignore")
            out.writeheader()
            out.writerows(keep)
