"""``saddlescope landscape``: slices of the loss through a critical point, and its spectrum."""

from __future__ import annotations

from pathlib import Path

import click

from saddlescope.cli.common import FiniteFloat, console, db_option, out_option
from saddlescope.errors import InvalidInputError
from saddlescope.survey import ResultStore, SurveyRecord, classify_options, rebuild
from saddlescope.survey.summary import representative

__all__ = ["landscape", "pick_record"]


@click.command()
@db_option("A survey database: draw a stored run instead of the worked example.")
@click.option(
    "--run",
    "run_id",
    default=None,
    help="Run id in --db (default: the converged saddle of median loss).",
)
@click.option(
    "--span",
    default=None,
    type=FiniteFloat(min=0, min_open=True),
    help="Half-width of the slices through a stored run, in units of ‖d‖ (default 1; needs --db).",
)
@click.option(
    "--html/--no-html",
    default=None,
    help="Also write interactive HTML (needs plotly; default: if installed).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@out_option("results/landscape")
def landscape(
    db: Path | None,
    run_id: str | None,
    span: float | None,
    html: bool | None,
    seed: int,
    out_dir: Path,
) -> None:
    """Slices of the loss through a critical point: eigen- and random directions, spectrum.

    With --db the run's θ, tolerance and loss bound are the stored ones, so the picture's
    verdict is the stored verdict; only the eigenvectors are computed again.
    """
    from saddlescope.pictures import model_pictures, worked_example_pictures

    if db is None and (run_id is not None or span is not None):
        raise click.UsageError("--run and --span choose and draw a stored run; add --db DB")
    if db is None:
        paths = worked_example_pictures(out_dir, html=html, seed=seed)
    else:
        with ResultStore(db, readonly=True) as store:
            record = pick_record(store, run_id)
        obj, theta = rebuild(record)
        console.print(
            f"run {record.run_id}: {record.verdict}, loss {record.loss_critical:.4g}, "
            f"[{record.hidden}], {record.num_params} parameters",
            markup=False,
        )
        paths = model_pictures(
            obj,
            theta,
            out_dir,
            seed=seed,
            span=1.0 if span is None else span,
            html=html,
            prefix=f"{record.run_id}_",
            classify_kwargs=classify_options(record),
        )
    console.print("figures: " + "  ".join(str(p) for p in paths), markup=False)


def pick_record(store: ResultStore, run_id: str | None) -> SurveyRecord:
    """The run named, or the converged saddle of median loss.

    Args:
        store: the results database.
        run_id: the run's id, or None for the median saddle.
    """
    if run_id is not None:
        return store.record(run_id)
    chosen = representative([r for r in store.records() if r.usable and r.kind == "saddle"], 1)
    if not chosen:
        raise InvalidInputError(f"no converged saddle in {store.path}; pass --run RUN_ID")
    return chosen[0]
