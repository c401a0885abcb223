"""The ``saddlescope`` command: thin commands that parse options, call the library and print.

One module per command (``analyze``, ``report``, ``demo``, ``survey``, ``escape``,
``landscape``, ``lift``); what they share is in :mod:`saddlescope.cli.common`. :func:`main` is
the console script's entry point.
"""

from __future__ import annotations

import errno
import signal
import sqlite3

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


def _describe_io(err: OSError | sqlite3.Error) -> str:
    """One line for a failed read or write: what, where, and what to do."""
    if isinstance(err, OSError):
        where = f" ({err.filename})" if err.filename else ""
        hint = "; free some space" if err.errno == errno.ENOSPC else ""
        return f"{err.strerror or err}{where}{hint}; check the path and its permissions"
    return f"the database failed: {err}; check the file, its folder and the free disk space"


def main() -> None:
    """Entry point: clean exits, whatever ends the command.

    saddlescope's own errors print one line and exit with status 2, a failed read or write
    (a missing folder, a full disk, a broken database) one line and 1; Ctrl-C (130) and SIGTERM
    (143) stop cleanly (pool workers stopped, the store closed) and say how to resume.
    """
    terminated: list[int] = []

    def on_sigterm(signum: int, frame: object) -> None:
        terminated.append(signum)  # then stop like Ctrl-C: the same clean-up runs
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        code = _run(terminated)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if isinstance(code, int) and code:
        raise SystemExit(code)


def _run(terminated: list[int]) -> object:
    """The command, its failures turned into one line and an exit status."""
    try:
        return cli.main(standalone_mode=False)
    except SaddlescopeError as err:
        console.print(f"[red]error:[/red] {safe(err)}")
        raise SystemExit(2) from None
    except (KeyboardInterrupt, click.exceptions.Abort):
        console.print(
            "stopped: what finished is stored; run the same command again to resume", markup=False
        )
        raise SystemExit(143 if terminated else 130) from None
    except click.ClickException as err:
        err.show()
        raise SystemExit(err.exit_code) from None
    except (OSError, sqlite3.Error) as err:  # a path, a full disk, a locked or broken file
        console.print(f"[red]error:[/red] {safe(_describe_io(err))}")
        raise SystemExit(1) from None
