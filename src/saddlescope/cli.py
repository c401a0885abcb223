"""The ``saddlescope`` command: a thin layer that parses, calls the library and prints."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from saddlescope import plots
from saddlescope.demo import WorkedExampleReport, run_worked_example
from saddlescope.errors import SaddlescopeError

console = Console(width=150) if not Console().is_terminal else Console()


def _fmt(x: float | None, spec: str = ".4g") -> str:
    return "—" if x is None else format(x, spec)


def _vec(values, spec: str = ".4g") -> str:
    return "(" + ", ".join(format(float(v), spec) for v in values) + ")"


@click.group()
@click.version_option(package_name="saddlescope")
def cli() -> None:
    """Critical-point analysis of neural-network training: minimum or saddle, and the way out."""


@cli.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results/demo"),
    show_default=True,
    help="Folder for figures and JSON.",
)
@click.option(
    "--grid",
    default=6,
    show_default=True,
    type=click.IntRange(1, 50),
    help="Starting points per axis in [-1.8, 1.8]².",
)
@click.option(
    "--method",
    type=click.Choice(["newton-mr", "gradnorm"]),
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
            f"{report.points[0].spectrum.rtol:g}; critical: ‖g‖ ≤ {report.points[0].grad_tol:g}; "
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


def main() -> None:
    """Entry point: turns saddlescope's own errors into a one-line message and exit status 2."""
    try:
        cli(standalone_mode=True)
    except SaddlescopeError as err:
        console.print(f"[red]error:[/red] {err}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
