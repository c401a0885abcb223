"""``saddlescope report``: an analysis JSON (from ``analyze --json``) rendered as an HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from saddlescope.cli.common import console, safe
from saddlescope.report import read_record, write_report

__all__ = ["report"]


@click.command("report")
@click.argument("record_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--html",
    "html_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write.",
)
def report(record_path: Path, html_path: Path) -> None:
    """Render RECORD_PATH (the JSON `saddlescope analyze --json` wrote) as a self-contained page.

    The page needs no network and runs no script: open it in any browser, offline.
    """
    record = read_record(record_path)
    console.print(f"wrote {safe(write_report(record, html_path))}")
