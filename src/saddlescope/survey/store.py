"""Study results in SQLite: one row per run, committed atomically when the run ends.

A run is stored under its ``run_id`` (a hash of everything that determines it) as the primary
key, in one transaction, so a study killed at any moment — Ctrl-C, a crash, SIGKILL — keeps
every finished run whole and none twice; running it again skips what is stored. Eigenvalues are
and the final parameters θ are kept compactly as little-endian float64 bytes, zlib-compressed.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import sqlite3
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from saddlescope.errors import InvalidInputError
from saddlescope.survey.record import SurveyRecord

__all__ = ["ResultStore"]

_FIELDS = list(dataclasses.fields(SurveyRecord))
_ARRAYS = ("eigenvalues", "theta")
_APPLICATION_ID = 0x53414444  # "SADD": marks files this store wrote


def _column_type(f: dataclasses.Field) -> str:
    if f.name in _ARRAYS:
        return "BLOB"
    base = str(f.type).split("|")[0].strip()
    return {"int": "INTEGER", "float": "REAL", "str": "TEXT", "bool": "INTEGER"}.get(base, "TEXT")


class ResultStore:
    """An SQLite file of :class:`SurveyRecord` rows (the embedded default store).

    >>> import tempfile, os
    >>> with ResultStore(os.path.join(tempfile.mkdtemp(), "s.db")) as store:
    ...     len(store)
    0

    ``readonly=True`` opens an existing file for reading only (``survey show``, ``plot``…).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise InvalidInputError(f"no results database at {self.path}")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"file:{self.path.resolve()}" + ("?mode=ro" if readonly else "")
        self._conn = sqlite3.connect(uri, uri=True, timeout=60)
        try:
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master")}
            app_id = self._conn.execute("PRAGMA application_id").fetchone()[0]
        except sqlite3.DatabaseError:
            self._conn.close()
            raise InvalidInputError(f"{self.path} is not an SQLite database") from None
        ours = app_id == _APPLICATION_ID
        if tables and not ours:
            self._conn.close()
            raise InvalidInputError(
                f"{self.path} is an SQLite database of something else (tables: "
                f"{', '.join(sorted(tables))}); saddlescope will not write into it — pass a new "
                "file or one written by saddlescope"
            )
        if not readonly:
            self._create()
        have = [row[1] for row in self._conn.execute('PRAGMA table_info("runs")')]
        if have != [f.name for f in _FIELDS]:
            self._conn.close()
            raise InvalidInputError(
                f"{self.path} holds results in another layout (written by another version of "
                "saddlescope); use a new database file"
            )

    def _create(self) -> None:
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        columns = ", ".join(
            f'"{f.name}" {_column_type(f)}' + (" PRIMARY KEY" if f.name == "run_id" else "")
            for f in _FIELDS
        )
        with self._conn:
            self._conn.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
            self._conn.execute(f"CREATE TABLE IF NOT EXISTS runs ({columns})")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS studies (config_hash TEXT PRIMARY KEY, name TEXT, "
                "config TEXT)"
            )

    # ------------------------------------------------------------------ writing
    def add_study(self, name: str, config_hash: str, config: dict[str, Any]) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT OR IGNORE INTO studies VALUES (?, ?, ?)",
                (config_hash, name, json.dumps(config, sort_keys=True)),
            )

    def add(self, record: SurveyRecord) -> bool:
        """Store one record atomically; False (and nothing written) if its run is already there."""
        values = [self._encode(f.name, getattr(record, f.name)) for f in _FIELDS]
        marks = ", ".join("?" for _ in _FIELDS)
        with self._conn:
            cur = self._conn.execute(f"INSERT OR IGNORE INTO runs VALUES ({marks})", values)
        return cur.rowcount == 1

    @staticmethod
    def _encode(name: str, value: Any) -> Any:
        if name in _ARRAYS:
            return zlib.compress(np.asarray(value, dtype="<f8").tobytes())
        if isinstance(value, (bool, np.bool_)):
            return int(value)
        return value

    # ------------------------------------------------------------------ reading
    def completed_ids(self) -> set[str]:
        return {row[0] for row in self._conn.execute("SELECT run_id FROM runs")}

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]

    def records(self, *, study: str | None = None) -> list[SurveyRecord]:
        """All stored records (of one study, if named), in a stable order."""
        names = ", ".join(f'"{f.name}"' for f in _FIELDS)
        sql = f"SELECT {names} FROM runs"
        args: tuple[Any, ...] = ()
        if study is not None:
            sql += " WHERE study = ?"
            args = (study,)
        sql += " ORDER BY num_params, train_steps, seed, run_id"
        return [self._decode(row) for row in self._conn.execute(sql, args)]

    @staticmethod
    def _decode(row: Iterable[Any]) -> SurveyRecord:
        values: dict[str, Any] = {}
        for f, v in zip(_FIELDS, row):
            if f.name in _ARRAYS:
                v = np.frombuffer(zlib.decompress(v), dtype="<f8").astype(np.float64)
            elif f.name in ("converged", "gradient_flat") or (f.name == "strict" and v is not None):
                v = bool(v)
            values[f.name] = v
        return SurveyRecord(**values)

    def studies(self) -> list[tuple[str, str]]:
        return list(self._conn.execute("SELECT name, config_hash FROM studies"))

    def study_config(self, config_hash: str) -> dict[str, Any]:
        """The stored config (as a dict) of the study with this hash."""
        row = self._conn.execute(
            "SELECT config FROM studies WHERE config_hash = ?", (config_hash,)
        ).fetchone()
        if row is None:
            raise InvalidInputError(f"no study with config hash {config_hash} in {self.path}")
        return json.loads(row[0])

    # ------------------------------------------------------------------ export
    def export_csv(self, path: str | Path) -> Path:
        """One row per run; eigenvalues as a space-separated column."""
        path = Path(path)
        records = self.records()
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([f.name for f in _FIELDS])
            for r in records:
                row = r.to_dict()
                for name in _ARRAYS:
                    row[name] = " ".join(repr(x) for x in getattr(r, name).tolist())
                writer.writerow([row[f.name] for f in _FIELDS])
        return path

    def export_parquet(self, path: str | Path) -> Path:
        """One row per run; eigenvalues as a list<double> column (needs pyarrow)."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InvalidInputError(
                "Parquet export needs pyarrow: pip install 'saddlescope[parquet]'"
            ) from None
        rows = [r.to_dict() for r in self.records()]
        table = pa.Table.from_pylist(rows) if rows else pa.table({f.name: [] for f in _FIELDS})
        pq.write_table(table, Path(path))
        return Path(path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
