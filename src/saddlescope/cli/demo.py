"""``saddlescope demo``: the worked example L = (1 − w1·w2)², found, classified, escaped, drawn."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import cast

import click
from rich.table import Table

from saddlescope import plots
from saddlescope.cli.common import console, fmt, out_option, vec
from saddlescope.demo import WorkedExampleReport, run_worked_example
from saddlescope.files import write_text
from saddlescope.search import METHODS, SearchMethod

__all__ = ["demo"]

TITLE = "L(w1, w2) = (1 − w1·w2)²"


@click.command()
@out_option("results/demo", "Folder for figures and JSON.")
@click.option(
    "--grid",
    default=6,
    show_default=True,
    type=click.IntRange(1, 50),
    help="Starting points per axis in [-1.8, 1.8]².",
)
@click.option(
    "--method",
    type=click.Choice(list(METHODS)),
    default="newton-mr",
    show_default=True,
    help="Critical-point search.",
)
def demo(out_dir: Path, grid: int, method: str) -> None:
    """The worked example L = (1 − w1·w2)²: find, classify, escape, and draw it."""
    start = time.perf_counter()
    report = run_worked_example(grid=grid, method=cast(SearchMethod, method))
    print_report(report, grid, method)
    out_dir.mkdir(parents=True, exist_ok=True)
    surface, contour = write_figures(report, out_dir)
    data = out_dir / "worked_example.json"
    write_text(data, json.dumps(report.to_dict(), indent=1))
    console.print(f"\nfigures: {surface}  {contour}\ndata:    {data}", markup=False)
    console.print(f"done in {time.perf_counter() - start:.1f} s")


def write_figures(report: WorkedExampleReport, out_dir: Path) -> tuple[Path, Path]:
    """The surface and the contour map of the worked example, with its points and escape.

    Args:
        report: the worked example's report.
        out_dir: the folder to write into.
    """
    curves = [
        (w1.numpy(), w2.numpy(), "minima w1·w2 = 1" if i == 0 else "")
        for i, (w1, w2) in enumerate(report.minima_curves)
    ]
    arrows = [(report.saddle, 1.0)] if report.saddle is not None else []
    surface = plots.save(
        plots.plot_surface(
            report.surface, report.points, title=TITLE, zmax=4.0, xlabel="w1", ylabel="w2"
        ),
        out_dir / "worked_example_surface.png",
    )
    contour = plots.save(
        plots.plot_contour(
            report.surface,
            report.points,
            curves=curves,
            arrows=arrows,
            title=TITLE,
            xlabel="w1",
            ylabel="w2",
        ),
        out_dir / "worked_example_contour.png",
    )
    return surface, contour


def print_report(report: WorkedExampleReport, grid: int, method: str) -> None:
    """The searches, the table of critical points and the escape check.

    Args:
        report: the worked example's report.
        grid: starting points per axis (for the headline).
        method: the search method (for the headline).
    """
    n = len(report.searches)
    ok = sum(s.converged for s in report.searches)
    worst = max(s.grad_norm for s in report.searches if s.converged) if ok else float("nan")
    console.print(
        f"[bold]Worked example[/bold] L(w1, w2) = (1 − w1·w2)², float64. {method} from a "
        f"{grid}×{grid} grid of starts: {ok}/{n} converged (largest final ‖g‖ {worst:.1e}); "
        f"{len(report.points)} distinct critical points."
    )
    table = Table(show_lines=False)
    columns = ("point (w1, w2)", "loss", "Hessian", "eigenvalues", "kind", "strict", "index")
    for col in (*columns, "min. ratio"):
        table.add_column(col, justify="right" if col in ("loss", "index", "min. ratio") else "left")
    for p, H in zip(report.points, report.hessians):
        table.add_row(
            vec(p.theta),
            fmt(p.loss, ".3g"),
            "[" + ", ".join(vec(row, ".3g") for row in H) + "]",
            vec(p.spectrum.eigenvalues, ".4g"),
            p.kind,
            str(p.strict),
            fmt(p.index, ".2f"),
            fmt(p.minimum_ratio, ".2f"),
        )
    console.print(table)
    if report.points:
        tol = report.points[0].tolerance
        console.print(
            f"zero eigenvalue: |λ| ≤ rtol·max|λ| at each point, rtol = {tol.rtol:g}; "
            f"critical: ‖g‖ ≤ {tol.grad_tol:g}; "
            "degenerate minima settled by the loss's lower bound 0"
        )
    print_escape(report)


def print_escape(report: WorkedExampleReport) -> None:
    """The escape from the saddle: predicted ½λt² against the actual change of loss.

    Args:
        report: the worked example's report.
    """
    saddle = report.saddle
    if saddle is None or saddle.escape_direction is None:
        console.print("no saddle found from these starts")
        return
    console.print(
        f"\n[bold]Escape from the saddle[/bold] at {vec(saddle.theta)}: λ_min = "
        f"{saddle.escape_curvature:.6g}, direction u = {vec(saddle.escape_direction, '.6f')}"
    )
    esc = Table()
    for col in ("step t", "predicted ½λt²", "actual L(θ+tu) − L(θ)", "L(θ+tu)"):
        esc.add_column(col, justify="right")
    for e in report.escape:
        esc.add_row(
            f"{e.t:.4g}", f"{e.predicted:.6g}", f"{e.actual:.6g}", f"{saddle.loss + e.actual:.6g}"
        )
    console.print(esc)
