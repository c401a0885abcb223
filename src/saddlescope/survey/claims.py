"""Claims on runs: several processes on one results database share a study's work.

Before a run starts, its driver claims it in the database (one short transaction): a run that is
stored, or claimed by a process that is still alive, is left to that process. A claim ends when
its run is stored (in the same transaction as the record), when its process closes the study,
or when its process dies: a claim whose process no longer exists is taken over by the next
process that asks. A process is named by host, pid and start time, so a recycled pid is not
mistaken for the claim's owner.

Processes on other machines (a database on shared storage) cannot be checked: their claims are
honoured for :data:`FOREIGN_CLAIM_HOURS`, then taken over. SQLite over network file systems is
fragile in any case; share a database between processes of one machine.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from dataclasses import dataclass

__all__ = ["CREATE_CLAIMS", "FOREIGN_CLAIM_HOURS", "Owner", "claim", "release"]

CREATE_CLAIMS = (
    "CREATE TABLE IF NOT EXISTS claims (run_id TEXT PRIMARY KEY, owner TEXT, claimed_at REAL)"
)
FOREIGN_CLAIM_HOURS = 24.0


@dataclass(frozen=True)
class Owner:
    """A process that claims runs: its host, pid and start time (ticks since boot, or 0)."""

    host: str
    pid: int
    start: int

    @classmethod
    def this_process(cls) -> Owner:
        """The calling process."""
        return cls(socket.gethostname(), os.getpid(), _start_time(os.getpid()))

    @classmethod
    def parse(cls, text: str) -> Owner | None:
        """The owner stored as ``host:pid:start``; None for text in another form."""
        host, _, rest = str(text).rpartition(":")
        host, _, pid = host.rpartition(":")
        if not (pid.isdigit() and rest.isdigit()):
            return None
        return cls(host, int(pid), int(rest))

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}"

    def alive(self, claimed_at: float) -> bool:
        """Whether this owner's claim still holds (its process runs; see the module docstring).

        Args:
            claimed_at: when the claim was made (``time.time()``).
        """
        if self.host != socket.gethostname():
            return time.time() - claimed_at < FOREIGN_CLAIM_HOURS * 3600
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # another user's live process
        return self.start == 0 or _start_time(self.pid) in (0, self.start)


def _start_time(pid: int) -> int:
    """The process's start time in clock ticks since boot (Linux); 0 where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return 0
    fields = stat.rpartition(")")[2].split()  # the name, in parentheses, may hold spaces
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else 0


def claim(conn: sqlite3.Connection, run_id: str, owner: Owner, *, skip_failed: bool) -> bool:
    """Claim one run for ``owner``; False when it is stored or another live process has it.

    One ``BEGIN IMMEDIATE`` transaction, so two processes never both get the same run.

    Args:
        conn: the results database (with the tables ``runs``, ``failures``, ``claims``).
        run_id: the run.
        owner: the claiming process.
        skip_failed: a run stored as failed counts as done (no ``--retry-failed``).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
            return _end(conn, False)
        failed = conn.execute("SELECT 1 FROM failures WHERE run_id = ?", (run_id,)).fetchone()
        if skip_failed and failed:
            return _end(conn, False)
        row = conn.execute(
            "SELECT owner, claimed_at FROM claims WHERE run_id = ?", (run_id,)
        ).fetchone()
        if row is not None:
            holder = Owner.parse(row[0])
            if holder is not None and holder != owner and holder.alive(float(row[1] or 0)):
                return _end(conn, False)
        conn.execute(
            "INSERT OR REPLACE INTO claims VALUES (?, ?, ?)", (run_id, str(owner), time.time())
        )
    except BaseException:
        conn.rollback()
        raise
    return _end(conn, True)


def _end(conn: sqlite3.Connection, claimed: bool) -> bool:
    conn.commit()
    return claimed


def release(conn: sqlite3.Connection, owner: Owner, run_id: str | None = None) -> None:
    """End ``owner``'s claim on one run, or all its claims (``run_id`` None); no commit.

    Args:
        conn: the results database.
        owner: the process whose claims end.
        run_id: the run, or None for all of them.
    """
    if run_id is None:
        conn.execute("DELETE FROM claims WHERE owner = ?", (str(owner),))
    else:
        conn.execute("DELETE FROM claims WHERE run_id = ? AND owner = ?", (run_id, str(owner)))
