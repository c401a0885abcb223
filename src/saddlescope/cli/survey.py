"""``saddlescope survey``: run or resume a study; show, export and plot its results database."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table

from saddlescope import plots
from saddlescope.cli.common import console, fmt, out_option, printable, safe
from saddlescope.errors import InvalidInputError
from saddlescope.survey import (
    BACKENDS,
    ResultStore,
    StudyConfig,
    SurveyRecord,
    default_config,
    load_config,
    run_study,
    summarize,
)
from saddlescope.survey.summary import representative

__all__ = ["print_summary", "survey", "survey_figures"]

_DB = click.Path(exists=True, dir_okay=False, path_type=Path)


class _SurveyGroup(click.Group):
    """``survey CONFIG …`` runs a study; ``survey show|export|plot DB`` reads one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Route anything that is not a subcommand (a config file, an option) to ``run``.

        Args:
            ctx: click's context.
            args: the command line after ``survey``.
        """
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_SurveyGroup)
def survey() -> None:
    r"""The empirical study: train networks, find critical points, loss against minimum ratio.

    \b
    saddlescope survey [CONFIG] [--runs N] [--workers W] [--backend local|ray]
                       [--address ADDR] [--db PATH] [--out DIR]
    saddlescope survey show DB
    saddlescope survey export DB [--csv PATH] [--parquet PATH]
    saddlescope survey plot DB [--out DIR] [--show-excluded]
    """


@survey.command("run")
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=None,
    help="Only the first N runs of the study (seed-major order).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Parallel runs (default: the machine's cores).",
)
@click.option("--backend", type=click.Choice(BACKENDS), default="local", show_default=True)
@click.option("--address", default=None, help="Ray cluster to join (with --backend ray).")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite results file (default: OUT/NAME.db). Runs already in it are skipped.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Run again the runs stored as failed (by default they are skipped).",
)
@out_option("results/survey", "Folder for figures.")
def survey_run(
    config: Path | None,
    runs: int | None,
    workers: int | None,
    backend: str,
    address: str | None,
    db: Path | None,
    retry_failed: bool,
    out_dir: Path,
) -> None:
    """Run (or resume) a study; CONFIG is a TOML file (default: the shipped default study)."""
    cfg = load_config(config) if config is not None else default_config()
    workers = workers or os.cpu_count() or 1
    db = db or out_dir / f"{cfg.name}.db"
    console.print(
        f"study [bold]{safe(cfg.name)}[/bold] ({cfg.config_hash}): "
        f"{len(cfg.runs()[:runs])} runs, {workers} workers, backend {backend}, db {safe(db)}"
    )
    run_with_progress(
        cfg,
        db,
        workers=workers,
        backend=backend,
        address=address,
        runs=runs,
        retry_failed=retry_failed,
    )
    planned = {spec.run_id for spec in cfg.runs()[:runs]}
    with ResultStore(db, readonly=True) as store:
        records = [r for r in store.records() if r.run_id in planned]
    print_summary(records)
    paths = survey_figures(records, out_dir, show_excluded=False)
    console.print("figures: " + "  ".join(str(p) for p in paths), markup=False)
    console.print(f"database: {db}", markup=False)


def run_with_progress(
    cfg: StudyConfig,
    db: Path,
    *,
    workers: int,
    backend: str,
    address: str | None,
    runs: int | None,
    retry_failed: bool = False,
) -> None:
    """:func:`run_study` with a progress bar (runs done, converged, time left).

    Args:
        cfg: the study.
        db: the results file.
        workers: parallel runs.
        backend: the executor backend.
        address: the Ray cluster, or None.
        runs: only the first N runs, or None for all.
        retry_failed: run the runs stored as failed again.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    converged = 0
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("converged {task.fields[converged]}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("runs", total=None, converged=0)

        def on_start(total: int, skipped: int) -> None:
            progress.update(task, total=total, completed=skipped)

        def on_record(record: SurveyRecord) -> None:
            nonlocal converged
            converged += record.usable
            progress.update(task, advance=1, converged=converged)

        result = run_study(
            cfg,
            db,
            workers=workers,
            backend=backend,
            address=address,
            max_runs=runs,
            on_record=on_record,
            on_start=on_start,
            on_failure=lambda failure: progress.update(task, advance=1),
            retry_failed=retry_failed,
        )
    console.print(str(result), markup=False)


@survey.command("show")
@click.argument("db", type=_DB)
def survey_show(db: Path) -> None:
    """Summary of a results database: runs, converged, gradient-flat, kinds, per model size."""
    with ResultStore(db, readonly=True) as store:
        records = store.records()
        studies = store.studies()
        failures = store.failures()
    names = ", ".join(f"{name} ({h})" for name, h in studies)
    console.print(printable(f"{db}: {len(records)} runs; studies: {names}"), markup=False)
    if failures:
        console.print(f"{len(failures)} runs failed (rerun with --retry-failed):", markup=False)
        for failure in failures[:5]:
            console.print(printable(f"  {failure}"), markup=False)
    print_summary(records)


@survey.command("export")
@click.argument("db", type=_DB)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--parquet", "parquet_path", type=click.Path(dir_okay=False, path_type=Path))
def survey_export(db: Path, csv_path: Path | None, parquet_path: Path | None) -> None:
    """Write the records to CSV and/or Parquet."""
    if csv_path is None and parquet_path is None:
        raise InvalidInputError("nothing to export: give --csv PATH and/or --parquet PATH")
    with ResultStore(db, readonly=True) as store:
        if csv_path is not None:
            console.print(f"wrote {store.export_csv(csv_path)}", markup=False)
        if parquet_path is not None:
            console.print(f"wrote {store.export_parquet(parquet_path)}", markup=False)


@survey.command("plot")
@click.argument("db", type=_DB)
@out_option("results/survey")
@click.option(
    "--show-excluded",
    is_flag=True,
    help="Also draw runs that did not converge or are gradient-flat (hollow, grey).",
)
def survey_plot(db: Path, out_dir: Path, show_excluded: bool) -> None:
    """Figures from a results database: loss vs minimum ratio, index histogram, spectra."""
    with ResultStore(db, readonly=True) as store:
        records = store.records()
    paths = survey_figures(records, out_dir, show_excluded=show_excluded)
    console.print("figures: " + "  ".join(str(p) for p in paths), markup=False)


def survey_figures(
    records: list[SurveyRecord], out_dir: Path, *, show_excluded: bool
) -> list[Path]:
    """Loss vs minimum ratio, the index histogram and representative spectra, as PNG files.

    Args:
        records: the runs to draw.
        out_dir: the folder to write into.
        show_excluded: also draw the runs that did not converge or are gradient-flat.
    """
    if not records:
        raise InvalidInputError("no records to plot: run a study first")
    written = [
        plots.save(
            plots.plot_loss_vs_ratio(records, show_excluded=show_excluded),
            out_dir / "loss_vs_minimum_ratio.png",
        ),
        plots.save(plots.plot_index_histogram(records), out_dir / "index_histogram.png"),
        plots.save(plots.plot_spectra(representative(records)), out_dir / "spectra.png"),
    ]
    if any("naive" in r.search for r in records):  # the source's protocol: its three views
        written.append(plots.save(plots.plot_source_views(records), out_dir / "source_views.png"))
    return written


def print_summary(records: list[SurveyRecord]) -> None:
    """The table of counts: all runs, then per model size (see :func:`summarize`).

    Args:
        records: the runs to count.
    """
    table = Table(title="critical points (kinds over converged runs, off kinks, not gradient-flat)")
    cols = (
        "models",
        "runs",
        "converged",
        "gradient-flat",
        "on a kink",
        "not converged",
        "minima",
        "saddles",
        "maxima",
        "degenerate",
        "median min. ratio",
    )
    for c in cols:
        table.add_column(c, justify="left" if c == "models" else "right")
    for row in summarize(records):
        counts = (row.runs, row.converged, row.gradient_flat, row.on_kink, row.not_critical)
        kinds = (row.minima, row.saddles, row.maxima, row.degenerate)
        table.add_row(
            safe(row.label), *map(str, counts), *map(str, kinds), fmt(row.median_ratio, ".3f")
        )
    console.print(table)
