"""Counts over a study's records: overall and per model size."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from saddlescope.survey.record import SurveyRecord

__all__ = ["SummaryRow", "representative", "summarize"]


@dataclass(frozen=True)
class SummaryRow:
    """Counts for one group of runs (``label``: "all" or a model size).

    Attributes:
        label: "all" or the model size.
        runs: runs in the group.
        converged: converged runs, not gradient-flat, off kinks.
        gradient_flat: gradient-flat runs.
        on_kink: runs that ended on an activation boundary (a converged search classified
            "on-kink", or a search that ended "on-kink").
        minima: converged runs at a minimum.
        saddles: converged runs at a saddle.
        maxima: converged runs at a maximum.
        degenerate: converged runs at a degenerate point.
        not_critical: runs that neither converged nor ended gradient-flat or on a kink.
        median_ratio: the median minimum ratio over converged runs (None without any).
    """

    label: str
    runs: int
    converged: int
    gradient_flat: int
    on_kink: int
    minima: int
    saddles: int
    maxima: int
    degenerate: int
    not_critical: int
    median_ratio: float | None  # over converged runs

    def to_dict(self) -> dict[str, Any]:
        """Every count by name."""
        return dict(self.__dict__)

    def __str__(self) -> str:
        ratio = "—" if self.median_ratio is None else f"{self.median_ratio:.4g}"
        return (
            f"{self.label}: {self.runs} runs, {self.converged} converged ({self.minima} minima, "
            f"{self.saddles} saddles, {self.maxima} maxima, {self.degenerate} degenerate), "
            f"{self.gradient_flat} gradient-flat, {self.on_kink} on a kink, "
            f"{self.not_critical} not critical; median minimum ratio {ratio}"
        )


def _row(label: str, records: Sequence[SurveyRecord]) -> SummaryRow:
    ok = [r for r in records if r.usable]
    ratios = sorted(r.minimum_ratio for r in ok)
    median = (
        ratios[len(ratios) // 2]
        if len(ratios) % 2
        else (0.5 * (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) if ratios else None)
    )

    def count(kind: str) -> int:
        return sum(r.kind == kind for r in ok)

    flat = sum(r.gradient_flat for r in records)
    kinked = sum(r.kind == "on-kink" or r.status == "on-kink" for r in records)
    return SummaryRow(
        label,
        len(records),
        len(ok),
        flat,
        kinked,
        count("minimum"),
        count("saddle"),
        count("maximum"),
        count("degenerate"),
        len(records) - len(ok) - flat - kinked,
        median,
    )


def summarize(records: Sequence[SurveyRecord]) -> list[SummaryRow]:
    """One row for all runs, then one per model (parameters, widths; activation if several).

    Kinds are counted over converged, non-gradient-flat runs only; ``not_critical`` counts the
    runs whose search neither converged nor ended gradient-flat.

    Args:
        records: the runs to count.
    """
    groups: dict[tuple[int, str, str], list[SurveyRecord]] = {}
    for r in records:
        groups.setdefault((r.num_params, r.hidden, r.activation), []).append(r)
    several = len({r.activation for r in records}) > 1
    rows = [_row("all", records)]
    rows += [
        _row(f"{n} params [{h}]" + (f" {a}" if several else ""), rs)
        for (n, h, a), rs in sorted(groups.items())
    ]
    return rows


def representative(records: Sequence[SurveyRecord], k: int = 5) -> list[SurveyRecord]:
    """Up to ``k`` converged records spread over the loss range (for spectrum plots).

    Args:
        records: the runs to pick from.
        k: how many at most.
    """
    ok = sorted((r for r in records if r.usable), key=lambda r: r.loss_critical)
    if len(ok) <= k:
        return ok
    if k == 1:
        return [ok[len(ok) // 2]]
    picks = {round(i * (len(ok) - 1) / (k - 1)) for i in range(k)}
    return [ok[i] for i in sorted(picks)]
