"""The ``saddlescope`` command: thin commands that parse options, call the library and print.

One module per command (``analyze``, ``report``, ``demo``, ``survey``, ``escape``,
``landscape``, ``lift``); what they share is in :mod:`saddlescope.cli.common`. :func:`main` is
the console script's entry point.
"""

from __future__ import annotations

import click
import matplotlib

matplotlib.use("Agg")  # a batch tool: figures go to files, never to a window

from saddlescope.cli.analyze import analyze_command
from saddlescope.cli.common import console, safe
from saddlescope.cli.demo import demo
from saddlescope.cli.escape import escape
from saddlescope.cli.landscape import landscape
from saddlescope.cli.lift import lift
from saddlescope.cli.report import report
from saddlescope.cli.survey import survey
from saddlescope.errors import SaddlescopeError

__all__ = ["cli", "main"]


@click.group()
@click.version_option(package_name="saddlescope")
def cli() -> None:
    """Critical-point analysis of neural-network training: minimum or saddle, and the way out."""


for _command in (analyze_command, report, demo, survey, escape, landscape, lift):
    cli.add_command(_command)


def main() -> None:
    """Entry point: turns saddlescope's own errors into a one-line message and exit status 2."""
    try:
        cli(standalone_mode=True)
    except SaddlescopeError as err:
        console.print(f"[red]error:[/red] {safe(err)}")
        raise SystemExit(2) from None
