"""The ``saddlescope`` command: a thin layer that parses, calls the library and prints."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click
import matplotlib

matplotlib.use("Agg")  # a batch tool: figures go to files, never to a window
from rich.console import Console
from rich.table import Table

from saddlescope import plots
from saddlescope.demo import WorkedExampleReport, run_worked_example
from saddlescope.errors import InvalidInputError, SaddlescopeError
from saddlescope.survey import (
    BACKENDS,
    ResultStore,
    SurveyRecord,
    default_config,
    load_config,
    run_study,
    summarize,
)
from saddlescope.survey.summary import representative

console = Console(width=150) if not Console().is_terminal else Console()


def _out_option(default: str, help: str = "Folder for figures and data.") -> Any:
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(default),
        show_default=True,
        help=help,
    )


def _db_option(help: str) -> Any:
    return click.option(
        "--db",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help=help,
    )


def _fmt(x: float | None, spec: str = ".4g") -> str:
    return "—" if x is None else format(x, spec)


def _vec(values, spec: str = ".4g") -> str:
    return "(" + ", ".join(format(float(v), spec) for v in values) + ")"


@click.group()
@click.version_option(package_name="saddlescope")
def cli() -> None:
    """Critical-point analysis of neural-network training: minimum or saddle, and the way out."""


@cli.command()
@_out_option("results/demo", "Folder for figures and JSON.")
@click.option(
    "--grid",
    default=6,
    show_default=True,
    type=click.IntRange(1, 50),
    help="Starting points per axis in [-1.8, 1.8]².",
)
@click.option(
    "--method",
    type=click.Choice(["newton-mr", "lm", "gradnorm"]),
    default="newton-mr",
    show_default=True,
    help="Critical-point search.",
)
def demo(out_dir: Path, grid: int, method: str) -> None:
    """The worked example L = (1 − w1·w2)²: find, classify, escape, and draw it."""
    start = time.perf_counter()
    report = run_worked_example(grid=grid, method=method)
    _print_report(report, grid, method)
    out_dir.mkdir(parents=True, exist_ok=True)
    title = "L(w1, w2) = (1 − w1·w2)²"
    curves = [
        (w1.numpy(), w2.numpy(), "minima w1·w2 = 1" if i == 0 else "")
        for i, (w1, w2) in enumerate(report.minima_curves)
    ]
    arrows = [(report.saddle, 1.0)] if report.saddle is not None else []
    surface = plots.save(
        plots.plot_surface(
            report.surface, report.points, title=title, zmax=4.0, xlabel="w1", ylabel="w2"
        ),
        out_dir / "worked_example_surface.png",
    )
    contour = plots.save(
        plots.plot_contour(
            report.surface,
            report.points,
            curves=curves,
            arrows=arrows,
            title=title,
            xlabel="w1",
            ylabel="w2",
        ),
        out_dir / "worked_example_contour.png",
    )
    data = out_dir / "worked_example.json"
    data.write_text(json.dumps(report.to_dict(), indent=1))
    console.print(f"\nfigures: {surface}  {contour}\ndata:    {data}")
    console.print(f"done in {time.perf_counter() - start:.1f} s")


def _print_report(report: WorkedExampleReport, grid: int, method: str) -> None:
    n = len(report.searches)
    ok = sum(s.converged for s in report.searches)
    worst = max(s.grad_norm for s in report.searches if s.converged) if ok else float("nan")
    console.print(
        f"[bold]Worked example[/bold] L(w1, w2) = (1 − w1·w2)², float64. {method} from a "
        f"{grid}×{grid} grid of starts: {ok}/{n} converged (largest final ‖g‖ {worst:.1e}); "
        f"{len(report.points)} distinct critical points."
    )
    table = Table(show_lines=False)
    for col in (
        "point (w1, w2)",
        "loss",
        "Hessian",
        "eigenvalues",
        "kind",
        "strict",
        "index",
        "min. ratio",
    ):
        table.add_column(col, justify="right" if col in ("loss", "index", "min. ratio") else "left")
    for p, H in zip(report.points, report.hessians):
        table.add_row(
            _vec(p.theta),
            _fmt(p.loss, ".3g"),
            "[" + ", ".join(_vec(row, ".3g") for row in H) + "]",
            _vec(p.spectrum.eigenvalues, ".4g"),
            p.kind,
            str(p.strict),
            _fmt(p.index, ".2f"),
            _fmt(p.minimum_ratio, ".2f"),
        )
    console.print(table)
    if report.points:
        console.print(
            f"zero eigenvalue: |λ| ≤ rtol·max|λ| at each point, rtol = "
            f"{report.points[0].spectrum.rtol:g}; critical: ‖g‖ ≤ {report.points[0].tolerance.grad_tol:g}; "
            "degenerate minima settled by the loss's lower bound 0"
        )
    saddle = report.saddle
    if saddle is None or saddle.escape_direction is None:
        console.print("no saddle found from these starts")
        return
    console.print(
        f"\n[bold]Escape from the saddle[/bold] at {_vec(saddle.theta)}: λ_min = "
        f"{saddle.escape_curvature:.6g}, direction u = {_vec(saddle.escape_direction, '.6f')}"
    )
    esc = Table()
    for col in ("step t", "predicted ½λt²", "actual L(θ+tu) − L(θ)", "L(θ+tu)"):
        esc.add_column(col, justify="right")
    for e in report.escape:
        esc.add_row(
            f"{e.t:.4g}", f"{e.predicted:.6g}", f"{e.actual:.6g}", f"{saddle.loss + e.actual:.6g}"
        )
    console.print(esc)


class _SurveyGroup(click.Group):
    """``survey CONFIG …`` runs a study; ``survey show|export|plot DB`` reads one."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@cli.group(cls=_SurveyGroup)
def survey() -> None:
    """The empirical study: train networks, find critical points, loss against minimum ratio.

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
@_out_option("results/survey", "Folder for figures.")
def survey_run(
    config: Path | None,
    runs: int | None,
    workers: int | None,
    backend: str,
    address: str | None,
    db: Path | None,
    out_dir: Path,
) -> None:
    """Run (or resume) a study; CONFIG is a TOML file (default: the shipped default study)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    cfg = load_config(config) if config is not None else default_config()
    workers = workers or os.cpu_count() or 1
    db = db or out_dir / f"{cfg.name}.db"
    console.print(
        f"study [bold]{cfg.name}[/bold] ({cfg.config_hash}): "
        f"{len(cfg.runs()[:runs])} runs, {workers} workers, backend {backend}, db {db}"
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
        )
    console.print(str(result))
    planned = {spec.run_id for spec in cfg.runs()[:runs]}
    with ResultStore(db, readonly=True) as store:
        records = [r for r in store.records() if r.run_id in planned]
    _print_summary(records)
    paths = _survey_figures(records, out_dir, show_excluded=False)
    console.print("figures: " + "  ".join(str(p) for p in paths))
    console.print(f"database: {db}")


@survey.command("show")
@click.argument("db", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def survey_show(db: Path) -> None:
    """Summary of a results database: runs, converged, gradient-flat, kinds, per model size."""
    with ResultStore(db, readonly=True) as store:
        records = store.records()
        studies = store.studies()
    console.print(
        f"{db}: {len(records)} runs; studies: " + ", ".join(f"{name} ({h})" for name, h in studies)
    )
    _print_summary(records)


@survey.command("export")
@click.argument("db", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--parquet", "parquet_path", type=click.Path(dir_okay=False, path_type=Path))
def survey_export(db: Path, csv_path: Path | None, parquet_path: Path | None) -> None:
    """Write the records to CSV and/or Parquet."""
    if csv_path is None and parquet_path is None:
        raise InvalidInputError("nothing to export: give --csv PATH and/or --parquet PATH")
    with ResultStore(db, readonly=True) as store:
        if csv_path is not None:
            console.print(f"wrote {store.export_csv(csv_path)}")
        if parquet_path is not None:
            console.print(f"wrote {store.export_parquet(parquet_path)}")


@survey.command("plot")
@click.argument("db", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_out_option("results/survey")
@click.option(
    "--show-excluded",
    is_flag=True,
    help="Also draw runs that did not converge or are gradient-flat (hollow, grey).",
)
def survey_plot(db: Path, out_dir: Path, show_excluded: bool) -> None:
    """Figures from a results database: loss vs minimum ratio, index histogram, spectra."""
    with ResultStore(db, readonly=True) as store:
        records = store.records()
    paths = _survey_figures(records, out_dir, show_excluded=show_excluded)
    console.print("figures: " + "  ".join(str(p) for p in paths))


def _survey_figures(
    records: list[SurveyRecord], out_dir: Path, *, show_excluded: bool
) -> list[Path]:
    if not records:
        raise InvalidInputError("no records to plot: run a study first")
    return [
        plots.save(
            plots.plot_loss_vs_ratio(records, show_excluded=show_excluded),
            out_dir / "loss_vs_minimum_ratio.png",
        ),
        plots.save(plots.plot_index_histogram(records), out_dir / "index_histogram.png"),
        plots.save(plots.plot_spectra(representative(records)), out_dir / "spectra.png"),
    ]


def _print_summary(records: list[SurveyRecord]) -> None:
    table = Table(title="critical points (kinds over converged, non-gradient-flat runs)")
    cols = (
        "models",
        "runs",
        "converged",
        "gradient-flat",
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
        table.add_row(
            row.label,
            str(row.runs),
            str(row.converged),
            str(row.gradient_flat),
            str(row.not_critical),
            str(row.minima),
            str(row.saddles),
            str(row.maxima),
            str(row.degenerate),
            _fmt(row.median_ratio, ".3f"),
        )
    console.print(table)


@cli.command()
@_db_option("A survey database: also escape from its converged saddles.")
@click.option(
    "--saddles",
    default=3,
    show_default=True,
    type=click.IntRange(0),
    help="How many survey saddles (spread over the loss range).",
)
@click.option(
    "--decrease",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    help="For survey saddles: escaped once the loss is lower by this fraction.",
)
@click.option("--max-steps", default=2000, show_default=True, type=click.IntRange(1))
@_out_option("results/escape")
def escape(db: Path | None, saddles: int, decrease: float, max_steps: int, out_dir: Path) -> None:
    """Compare ways out of a saddle: negative curvature, perturbed GD, saddle-free Newton, GD."""
    import torch

    from saddlescope import toy
    from saddlescope.escape import compare_escapes
    from saddlescope.survey import stored_run

    obj = toy.worked_example_objective()
    start = torch.tensor([1e-6, 0.0], dtype=torch.float64)
    results = compare_escapes(obj, start, target_loss=1e-8, max_steps=max_steps)
    _print_escapes("worked example, from (1e-6, 0) next to the saddle, to loss ≤ 1e-8", results)
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
                obj, theta = stored_run(store, record)
                results = compare_escapes(
                    obj,
                    theta,
                    decrease=decrease * record.loss_critical,
                    max_steps=max_steps,
                    seed=record.seed,
                )
                what = (
                    f"survey saddle {record.run_id} ([{record.hidden}], loss "
                    f"{record.loss_critical:.4g}, index {record.index:.2f}), "
                    f"to {100 * decrease:g} % lower loss"
                )
                _print_escapes(what, results)
                paths.append(
                    plots.save(
                        plots.plot_escape_paths(results, title=what),
                        out_dir / f"escape_{record.run_id}.png",
                    )
                )
    console.print("figures: " + "  ".join(str(p) for p in paths))


def _print_escapes(what: str, results) -> None:
    table = Table(title=what)
    for col in ("method", "reached", "steps", "HVPs", "seconds", "final loss"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in results:
        table.add_row(
            r.method,
            "yes" if r.reached else "no",
            str(r.steps_to_target if r.reached else len(r.path) - 1),
            str(r.hvps),
            f"{r.seconds:.3f}",
            f"{r.loss:.3g}",
        )
    console.print(table)


@cli.command()
@_db_option("A survey database: draw a stored run instead of the worked example.")
@click.option(
    "--run",
    "run_id",
    default=None,
    help="Run id in --db (default: the converged saddle of median loss).",
)
@click.option("--span", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option(
    "--html/--no-html",
    default=None,
    help="Also write interactive HTML (needs plotly; default: if installed).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@_out_option("results/landscape")
def landscape(
    db: Path | None, run_id: str | None, span: float, html: bool | None, seed: int, out_dir: Path
) -> None:
    """Slices of the loss through a critical point: eigen- and random directions, spectrum."""
    from saddlescope.pictures import model_pictures, worked_example_pictures
    from saddlescope.survey import stored_run

    if db is None:
        paths = worked_example_pictures(out_dir, html=html, seed=seed)
    else:
        with ResultStore(db, readonly=True) as store:
            records = store.records()
            if run_id is not None:
                chosen = [r for r in records if r.run_id == run_id]
                if not chosen:
                    raise InvalidInputError(f"no run {run_id!r} in {db}")
            else:
                chosen = representative([r for r in records if r.usable and r.kind == "saddle"], 1)
                if not chosen:
                    raise InvalidInputError(f"no converged saddle in {db}; pass --run RUN_ID")
            record = chosen[0]
            obj, theta = stored_run(store, record)
        console.print(
            f"run {record.run_id}: {record.kind}, loss {record.loss_critical:.4g}, "
            f"[{record.hidden}], {record.num_params} parameters"
        )
        paths = model_pictures(
            obj,
            theta,
            out_dir,
            seed=seed,
            span=span,
            html=html,
            prefix=f"{record.run_id}_",
            classify_kwargs={"grad_tol": 1e-6, "loss_lower_bound": 0.0},
        )
    console.print("figures: " + "  ".join(str(p) for p in paths))


@cli.command()
@click.option(
    "--dataset",
    type=click.Choice(["teacher-student", "sinc"]),
    default="teacher-student",
    show_default=True,
)
@click.option(
    "--hidden",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="Hidden units of the narrow network (one more after the split).",
)
@click.option(
    "--ratio",
    "ratios",
    multiple=True,
    type=float,
    help="Split ratios λ (repeatable; default -0.5 0 0.25 0.5 1 1.5).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@_out_option("results/lift")
def lift(dataset: str, hidden: int, ratios: tuple[float, ...], seed: int, out_dir: Path) -> None:
    """The dimension effect: a narrow network's minimum becomes a saddle when a neuron is split."""
    from saddlescope.lifting import lift_experiment

    options = {"ratios": ratios} if ratios else {}
    report = lift_experiment(dataset=dataset, hidden=hidden, seed=seed, **options)
    console.print(str(report))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "lift.json"
    path.write_text(json.dumps(report.to_dict(), indent=1))
    console.print(f"data: {path}")


def main() -> None:
    """Entry point: turns saddlescope's own errors into a one-line message and exit status 2."""
    try:
        cli(standalone_mode=True)
    except SaddlescopeError as err:
        console.print(f"[red]error:[/red] {err}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
