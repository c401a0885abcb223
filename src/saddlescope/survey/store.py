"""Study results in SQLite: one row per run, committed atomically when the run ends.

A run is stored under its ``run_id`` (a hash of its spec: what determines its result, not the
library versions, which are stored beside it) as the primary key, in one transaction, so a study
killed at any moment — Ctrl-C, a crash, SIGKILL — keeps every finished run whole and none twice;
running it again skips what is stored, after a library upgrade too. The file carries its schema
version (``PRAGMA user_version``, see :data:`~saddlescope.survey.columns.SCHEMA_VERSION`): a
file of a newer schema is refused with a clear message; a schema-1 file is read as it is and
upgraded in place when opened for writing (:mod:`saddlescope.survey.legacy`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from saddlescope.errors import InvalidInputError
from saddlescope.files import atomic_path
from saddlescope.survey import columns
from saddlescope.survey.claims import CREATE_CLAIMS, Owner, claim, release
from saddlescope.survey.columns import ARRAYS, COLUMNS, NAMES, NAMES_V2, SCHEMA_VERSION
from saddlescope.survey.legacy import LEGACY_COLUMNS, legacy_records
from saddlescope.survey.record import SurveyRecord
from saddlescope.survey.runner import RunFailure

__all__ = ["ResultStore"]

_APPLICATION_ID = 0x53414444  # "SADD": marks files this store wrote
# every table this store creates
_TABLES = {"runs", "studies", "runs_schema1", "failures", "claims"}
_CREATE_FAILURES = (
    "CREATE TABLE IF NOT EXISTS failures (run_id TEXT PRIMARY KEY, error TEXT, attempts INTEGER)"
)
_ORDER = ("num_params", "train_steps", "seed", "run_id")
_CREATE_RUNS = "CREATE TABLE IF NOT EXISTS runs ({})".format(
    ", ".join(f'"{name}" {sql}' for name, sql in COLUMNS)
)
_INSERT = "INSERT OR IGNORE INTO runs VALUES ({})".format(", ".join("?" for _ in COLUMNS))


class ResultStore:
    """An SQLite file of :class:`SurveyRecord` rows (the embedded default store).

    >>> import tempfile, os
    >>> with ResultStore(os.path.join(tempfile.mkdtemp(), "s.db")) as store:
    ...     len(store)
    0

    Args:
        path: the file (created, with its folder, unless ``readonly``).
        readonly: open an existing file for reading only (``survey show``, ``plot``…); a
            schema-1 file is then read as it is, without upgrading it.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path, self.readonly = Path(path), readonly
        self.owner = Owner.this_process()
        if readonly and not self.path.is_file():
            raise InvalidInputError(f"no results database at {self.path}")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = self._connect(readonly)
        self._legacy_cache: list[tuple[str, SurveyRecord]] | None = None
        self._names = NAMES  # the runs table's columns as stored
        try:
            self._legacy = self._check(readonly)
            if self._legacy and not readonly:
                self._migrate()
                self._legacy = False
            if not readonly:
                self._create()
        except BaseException:
            self._conn.close()
            raise

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        """A connection; a reader on read-only storage opens the file immutable.

        A reader where the folder is writable opens the file as a writer does, with
        ``query_only`` on: it takes part in the WAL's locking like any connection, so it sees
        what other processes have committed and never a page half-copied by their checkpoint.
        On read-only storage a WAL-mode file cannot get the -shm file it needs even to be read:
        there it is opened read-only, or immutable if that fails (writers checkpoint on close,
        so the file alone is whole, and nobody can be writing to read-only storage).
        """
        uri = f"file:{self.path.resolve()}"
        if not readonly or os.access(self.path.parent, os.W_OK):
            writer = sqlite3.connect(uri, uri=True, timeout=60)
            if readonly:
                writer.execute("PRAGMA query_only = ON")
            return writer
        conn = None
        try:
            conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=60)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:  # e.g. "unable to open database file": no -shm here
            if conn is not None:
                conn.close()
            return sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, timeout=60)
        except sqlite3.DatabaseError:
            pass  # not a database at all: _check says so
        assert conn is not None
        return conn

    def _check(self, readonly: bool) -> bool:
        """Refuse what this store cannot read; True for a schema-1 file."""
        try:
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master")}
            app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError:
            raise InvalidInputError(f"{self.path} is not an SQLite database") from None
        if tables and app_id != _APPLICATION_ID:
            raise InvalidInputError(
                f"{self.path} is an SQLite database of something else (tables: "
                f"{', '.join(sorted(tables))}); saddlescope will not write into it — pass a new "
                "file or one written by saddlescope"
            )
        self._refuse_foreign_objects()
        self._require_intact()
        if version > SCHEMA_VERSION:
            raise InvalidInputError(
                f"{self.path} was written by a newer saddlescope (schema {version}; this one "
                f"reads up to {SCHEMA_VERSION}); upgrade, or start a new file with --db NEW"
            )
        have = tuple(row[1] for row in self._conn.execute('PRAGMA table_info("runs")'))
        if have == LEGACY_COLUMNS and version < 2:
            return True
        if have == NAMES_V2 and version == 2:
            self._names = NAMES_V2  # read as it is; a writer adds the column (_create)
            return False
        if have == NAMES or (not have and not readonly):
            return False
        raise InvalidInputError(
            f"{self.path} holds results in another layout (schema {version}, not written by "
            "this version of saddlescope); use a new database file"
        )

    def _require_intact(self) -> None:
        """A damaged file is an error, never a partial table.

        ``PRAGMA quick_check`` checks each page's structure in one pass over the file. A file
        another process holds busy (SQLite's "locked"/"busy", e.g. while it rebuilds the WAL
        index) is not damaged: the check is tried again, and skipped after a few seconds.
        """
        verdict = ["ok"]
        for _ in range(_BUSY_TRIES):
            try:
                verdict = [r[0] for r in self._conn.execute("PRAGMA quick_check(3)")]
            except sqlite3.OperationalError as err:
                if _busy(err):
                    time.sleep(0.1)
                    continue
                verdict = [str(err)]
            except sqlite3.DatabaseError as err:
                verdict = [str(err)]
            break
        if verdict != ["ok"]:
            said = " ".join(" ".join(verdict).split())[:200]
            raise sqlite3.DatabaseError(
                f"{self.path} is damaged (SQLite's check: {said}); "
                "restore it from a copy, or start a new file with --db NEW"
            )

    def _refuse_foreign_objects(self) -> None:
        """Triggers, views and tables saddlescope did not create: refused, never run.

        A trigger in a crafted file would rewrite every record this store adds.
        """
        foreign = [
            f"{kind} {name!r}"
            for kind, name in self._conn.execute("SELECT type, name FROM sqlite_master")
            if kind in ("trigger", "view") or (kind == "table" and name not in _TABLES)
        ]
        if foreign:
            raise InvalidInputError(
                f"{self.path} holds {', '.join(foreign[:5])}, which saddlescope did not create "
                "(a trigger could rewrite the results stored); use a new database file"
            )

    def _create(self) -> None:
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        with self._conn:
            self._conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            self._conn.execute(_CREATE_RUNS)
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS studies (config_hash TEXT PRIMARY KEY, name TEXT, "
                "config TEXT)"
            )
            self._conn.execute(_CREATE_FAILURES)
            self._conn.execute(CREATE_CLAIMS)
            if self._names == NAMES_V2:  # schema 2 → 3: the search's evidence, empty before
                self._conn.execute('ALTER TABLE runs ADD COLUMN "search" TEXT')
                self._names = NAMES
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _migrate(self) -> None:
        """Upgrade a schema-1 file in place, in one transaction (all or nothing).

        Rows become records under their version-free ids; a second row of the same run (from
        another library version) is kept, untouched, in the table ``runs_schema1``.
        """
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            converted = legacy_records(conn)
            conn.execute("ALTER TABLE runs RENAME TO runs_schema1")
            conn.execute(_CREATE_RUNS)
            for old_id, record in converted:
                conn.execute(_INSERT, columns.encode(record))
                conn.execute("DELETE FROM runs_schema1 WHERE run_id = ?", (old_id,))
            if conn.execute("SELECT COUNT(*) FROM runs_schema1").fetchone()[0] == 0:
                conn.execute("DROP TABLE runs_schema1")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    # ------------------------------------------------------------------ writing
    def add_study(self, name: str, config_hash: str, config: dict[str, Any]) -> None:
        """Keep a study's config (once per config hash), so that its runs can be rebuilt.

        Args:
            name: the study's name.
            config_hash: :attr:`StudyConfig.config_hash`.
            config: :meth:`StudyConfig.to_dict`.
        """
        with self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO studies VALUES (?, ?, ?)",
                (config_hash, name, json.dumps(config, sort_keys=True)),
            )

    def add_failure(self, failure: RunFailure) -> None:
        """Store a run that failed on every attempt (replacing an older failure of it).

        Args:
            failure: the run's id, its last error and how many attempts it had.
        """
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?)",
                (failure.run_id, failure.error, failure.attempts),
            )
            release(self._conn, self.owner, failure.run_id)

    def failures(self) -> list[RunFailure]:
        """The stored failures (none in files from before failures were kept)."""
        if not self._has_failures():
            return []
        rows = self._conn.execute("SELECT run_id, error, attempts FROM failures ORDER BY run_id")
        return [RunFailure(str(r), str(e), int(a)) for r, e, a in rows]

    def _has_failures(self) -> bool:
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'failures'"
        return self._conn.execute(query).fetchone() is not None

    def add(self, record: SurveyRecord) -> bool:
        """Store one record atomically; False (and nothing written) if its run is already there.

        Args:
            record: the record to store.
        """
        with self._conn:
            cur = self._conn.execute(_INSERT, columns.encode(record))
            if self._has_failures():  # it failed before and works now
                self._conn.execute("DELETE FROM failures WHERE run_id = ?", (record.run_id,))
            release(self._conn, self.owner, record.run_id)
        return cur.rowcount == 1

    def claim(self, run_id: str, *, skip_failed: bool = True) -> bool:
        """Claim a run for this process (:mod:`~saddlescope.survey.claims`); False: leave it.

        Args:
            run_id: the run.
            skip_failed: a run stored as failed counts as done.
        """
        return claim(self._conn, run_id, self.owner, skip_failed=skip_failed)

    def release_claims(self) -> None:
        """End this process's claims on runs it did not finish (they go to whoever asks)."""
        with self._conn:
            release(self._conn, self.owner)

    def claimed_elsewhere(self) -> int:
        """Runs claimed now by other processes that are still alive."""
        rows = self._conn.execute("SELECT owner, claimed_at FROM claims").fetchall()
        owners = [(Owner.parse(o), float(t or 0)) for o, t in rows]
        return sum(1 for o, t in owners if o is not None and o != self.owner and o.alive(t))

    # ------------------------------------------------------------------ reading
    def _legacy_records(self) -> list[tuple[str, SurveyRecord]]:
        if self._legacy_cache is None:
            self._legacy_cache = legacy_records(self._conn)
        return self._legacy_cache

    def completed_ids(self) -> set[str]:
        """The run ids stored."""
        if self._legacy:
            return {r.run_id for _, r in self._legacy_records()}
        return {row[0] for row in self._conn.execute("SELECT run_id FROM runs")}

    def __len__(self) -> int:
        if self._legacy:
            return len(self._legacy_records())
        return self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def records(self, *, study: str | None = None) -> list[SurveyRecord]:
        """All stored records (of one study, if named), in a stable order.

        Args:
            study: only the records of the study of this name (None: all).
        """
        if self._legacy:
            records = [r for _, r in self._legacy_records()]
            records = [r for r in records if study is None or r.study == study]
            return sorted(records, key=lambda r: tuple(getattr(r, k) for k in _ORDER))
        names = ", ".join(f'"{name}"' for name in self._names)
        sql = f"SELECT {names} FROM runs"
        args: tuple[Any, ...] = ()
        if study is not None:
            sql += " WHERE study = ?"
            args = (study,)
        sql += " ORDER BY " + ", ".join(_ORDER)
        rows = self._conn.execute(sql, args)
        return [columns.decode(dict(zip(self._names, row))) for row in rows]

    def record(self, run_id: str) -> SurveyRecord:
        """The stored record of one run.

        Args:
            run_id: the run's id; one not stored raises :class:`InvalidInputError`.
        """
        for record in self.records():
            if record.run_id == run_id:
                return record
        raise InvalidInputError(f"no run {run_id!r} in {self.path}")

    def studies(self) -> list[tuple[str, str]]:
        """(name, config hash) of every study stored."""
        return list(self._conn.execute("SELECT name, config_hash FROM studies"))

    def study_config(self, config_hash: str) -> dict[str, Any]:
        """The stored config (as a dict) of the study with this hash.

        Args:
            config_hash: the study's :attr:`StudyConfig.config_hash`.
        """
        row = self._conn.execute(
            "SELECT config FROM studies WHERE config_hash = ?", (config_hash,)
        ).fetchone()
        if row is None:
            raise InvalidInputError(f"no study with config hash {config_hash} in {self.path}")
        return json.loads(row[0])

    # ------------------------------------------------------------------ export
    def export_csv(self, path: str | Path) -> Path:
        """One row per run, the store's columns; arrays as space-separated numbers.

        Args:
            path: the CSV file to write.
        """
        path = Path(path)
        with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(NAMES)
            for record in self.records():
                row = columns.flat_row(record)
                for name in ARRAYS:
                    values = row[name]
                    row[name] = "" if values is None else " ".join(repr(x) for x in values.tolist())
                writer.writerow([row[n] if n in ARRAYS else _cell(row[n]) for n in NAMES])
        return path

    def export_parquet(self, path: str | Path) -> Path:
        """One row per run, the store's columns; arrays as list<double> (needs pyarrow).

        Args:
            path: the Parquet file to write.
        """
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InvalidInputError(
                "Parquet export needs pyarrow: pip install 'saddlescope[parquet]'"
            ) from None
        rows = []
        for record in self.records():
            row = columns.flat_row(record)
            for name in ARRAYS:
                row[name] = None if row[name] is None else row[name].tolist()
            rows.append(row)
        table = pa.Table.from_pylist(rows) if rows else pa.table({name: [] for name in NAMES})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        return Path(path)

    def close(self) -> None:
        """Close the file; a writer first folds the write-ahead log into it.

        The checkpoint leaves the database whole in one file (no -wal to carry along or to
        grow across a long study), which read-only storage can then open.
        """
        if not self.readonly:
            with contextlib.suppress(sqlite3.Error):
                self.release_claims()
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_BUSY_TRIES = 50  # 0.1 s apart


def _busy(err: sqlite3.OperationalError) -> bool:
    """True for SQLite's "database is locked" / "busy": another process, not damage."""
    text = str(err).lower()
    return "locked" in text or "busy" in text


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet will not run as a formula (OWASP's advice).

    Text starting with = + - @, a tab or a carriage return gets a leading '; numbers and the
    space-separated number arrays stay as they are.
    """
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
