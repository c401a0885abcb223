"""``saddlescope escape``: ways out of a saddle, on the worked example and on survey saddles."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
from rich.table import Table

from saddlescope import plots
from saddlescope.cli.common import FiniteFloat, console, db_option, fmt, out_option, safe
from saddlescope.escape import EscapeResult
from saddlescope.survey import ResultStore, SurveyRecord, escape_stored
from saddlescope.survey.summary import representative

__all__ = ["escape", "print_escapes"]


@click.command()
@db_option("A survey database: also escape from its converged saddles.")
@click.option(
    "--saddles",
    default=3,
    show_default=True,
    type=click.IntRange(1),
    help="How many survey saddles (spread over the loss range).",
)
@click.option(
    "--decrease",
    default=0.1,
    show_default=True,
    type=FiniteFloat(0, 1, min_open=True, max_open=True),
    help="For survey saddles: escaped once the loss is lower by this fraction.",
)
@click.option("--max-steps", default=2000, show_default=True, type=click.IntRange(1))
@out_option("results/escape")
def escape(db: Path | None, saddles: int, decrease: float, max_steps: int, out_dir: Path) -> None:
    """Compare ways out of a saddle: negative curvature, perturbed GD, saddle-free Newton, GD."""
    import torch

    from saddlescope import toy
    from saddlescope.escape import compare_escapes

    obj = toy.worked_example_objective()
    start = torch.tensor([1e-6, 0.0], dtype=torch.float64)
    results = compare_escapes(obj, start, target_loss=1e-8, max_steps=max_steps)
    print_escapes("worked example, from (1e-6, 0) next to the saddle, to loss ≤ 1e-8", results)
    paths = [
        plots.save(
            plots.plot_escape_paths(results, title="worked example"),
            out_dir / "escape_worked_example.png",
        )
    ]
    if db is not None and saddles:
        with ResultStore(db, readonly=True) as store:
            pool = [r for r in store.records() if r.usable and r.kind == "saddle"]
        for record in representative(pool, saddles):
            paths.append(escape_survey_saddle(record, decrease, max_steps, out_dir))
    console.print("figures: " + "  ".join(str(p) for p in paths), markup=False)


def escape_survey_saddle(
    record: SurveyRecord, decrease: float, max_steps: int, out_dir: Path
) -> Path:
    """Escape from one stored saddle (its θ and tolerance as stored), print and draw the paths.

    Args:
        record: the stored saddle.
        decrease: escaped once the loss is lower by this fraction.
        max_steps: each method's step budget.
        out_dir: the folder for the figure.
    """
    results = escape_stored(record, decrease=decrease, max_steps=max_steps)
    what = (
        f"survey saddle {record.run_id} ([{record.hidden}], loss "
        f"{record.loss_critical:.4g}, index {record.index:.2f}), "
        f"to {100 * decrease:g} % lower loss"
    )
    console.print(
        f"stored verdict of run {record.run_id}: {record.verdict}; escape curvature "
        f"{fmt(record.escape_curvature, '.4g')}",
        markup=False,
    )
    print_escapes(what, results)
    return plots.save(
        plots.plot_escape_paths(results, title=what),
        out_dir / f"escape_{record.run_id}.png",
    )


def print_escapes(what: str, results: Sequence[EscapeResult]) -> None:
    """One row per method: reached, steps, HVPs, seconds, final loss.

    Args:
        what: the table's title (printed literally).
        results: one result per method.
    """
    table = Table(title=safe(what))
    for col in ("method", "reached", "steps", "HVPs", "seconds", "final loss"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in results:
        table.add_row(
            safe(r.method),
            "yes" if r.reached else "no",
            str(r.steps_to_target if r.reached else len(r.path) - 1),
            str(r.hvps),
            f"{r.seconds:.3f}",
            f"{r.loss:.3g}",
        )
    console.print(table)
