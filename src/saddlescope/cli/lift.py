"""``saddlescope lift``: the dimension effect — a narrow network's minimum, split into a saddle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from saddlescope.cli.common import FiniteFloat, console, out_option
from saddlescope.files import write_text

__all__ = ["lift"]


@click.command()
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
    type=FiniteFloat(),
    help="Split ratios λ (repeatable; default -0.5 0 0.25 0.5 1 1.5).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@out_option("results/lift")
def lift(dataset: str, hidden: int, ratios: tuple[float, ...], seed: int, out_dir: Path) -> None:
    """The dimension effect: a narrow network's minimum becomes a saddle when a neuron is split."""
    from saddlescope.lifting import lift_experiment

    options: dict[str, Any] = {"ratios": ratios} if ratios else {}
    report = lift_experiment(dataset=dataset, hidden=hidden, seed=seed, **options)
    console.print(str(report), markup=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "lift.json"
    write_text(path, json.dumps(report.to_dict(), indent=1))
    console.print(f"data: {path}", markup=False)
