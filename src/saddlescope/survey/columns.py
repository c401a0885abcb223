"""A record as one flat row: the store's columns, and the conversions both ways.

The record is the one source of truth; some columns are derived from it only so that SQL queries
and exports see them directly (the spec's seed, widths and steps; the inertia's index and
minimum ratio) and are ignored when a row is read back. Arrays (eigenvalues, θ, the escape
direction) are little-endian float64 bytes, zlib-compressed; the spec and the versions are JSON.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import numpy as np

from saddlescope.errors import InvalidInputError
from saddlescope.survey.config import RunSpec
from saddlescope.survey.record import SurveyRecord
from saddlescope.tolerance import Inertia, Tolerance

__all__ = [
    "ARRAYS",
    "COLUMNS",
    "NAMES",
    "NAMES_V2",
    "PLAIN",
    "SCHEMA_VERSION",
    "decode",
    "encode",
    "flat_row",
    "pack",
    "unpack",
]

SCHEMA_VERSION = 3
# 1: the unversioned layout before run specs, tolerances and versions were kept;
# 2: before the search's evidence (the "search" column) was kept, and when "flatness" was
#    ‖H·p + g‖/‖g‖ (p the MINRES step) — since 3 it is the share of g in the zero band

#: (name, SQL type) of every column, in table order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("run_id", "TEXT PRIMARY KEY"),
    ("study", "TEXT"),
    ("config_hash", "TEXT"),
    ("seed", "INTEGER"),
    ("hidden", "TEXT"),
    ("activation", "TEXT"),
    ("train_steps", "INTEGER"),
    ("num_params", "INTEGER"),
    ("loss_trained", "REAL"),
    ("loss_critical", "REAL"),
    ("grad_norm", "REAL"),
    ("converged", "INTEGER"),
    ("gradient_flat", "INTEGER"),
    ("status", "TEXT"),
    ("search_steps", "INTEGER"),
    ("hvps", "INTEGER"),
    ("flatness", "REAL"),
    ("kind", "TEXT"),
    ("strict", "INTEGER"),
    ("grad_tol", "REAL"),
    ("rtol", "REAL"),
    ("atol", "REAL"),
    ("threshold", "REAL"),
    ("n_neg", "INTEGER"),
    ("n_zero", "INTEGER"),
    ("n_pos", "INTEGER"),
    ("index", "REAL"),
    ("minimum_ratio", "REAL"),
    ("eigenvalues", "BLOB"),
    ("theta", "BLOB"),
    ("escape_direction", "BLOB"),
    ("escape_curvature", "REAL"),
    ("spec", "TEXT"),
    ("versions", "TEXT"),
    ("seconds_train", "REAL"),
    ("seconds_search", "REAL"),
    ("seconds_spectrum", "REAL"),
    ("search", "TEXT"),  # schema 3: the search's evidence, JSON
)
NAMES = tuple(name for name, _ in COLUMNS)
NAMES_V2 = NAMES[:-1]  # a schema-2 table: all but "search"
ARRAYS = ("eigenvalues", "theta", "escape_direction")
PLAIN = (  # the columns stored as they are in the record
    "num_params",
    "loss_trained",
    "loss_critical",
    "grad_norm",
    "status",
    "search_steps",
    "hvps",
    "flatness",
    "kind",
    "threshold",
    "escape_curvature",
    "seconds_train",
    "seconds_search",
    "seconds_spectrum",
)

MAX_ARRAY_BYTES = 64 * 1024**2  # a stored array inflates to at most this (8M float64)


def flat_row(record: SurveyRecord) -> dict[str, Any]:
    """The record as {column: value}: arrays as numpy arrays, spec and versions as JSON text.

    Args:
        record: the record to flatten.
    """
    d = record.to_dict()
    row = {name: d[name] for name in NAMES if name in d and name not in ARRAYS}
    row.update(record.tolerance.to_dict())
    inertia = record.inertia
    row.update(n_neg=inertia.n_neg, n_zero=inertia.n_zero, n_pos=inertia.n_pos)
    row.update({name: getattr(record, name) for name in ARRAYS})
    row["spec"] = json.dumps(record.spec.to_dict(), sort_keys=True)
    row["versions"] = json.dumps(record.versions, sort_keys=True)
    row["search"] = json.dumps(record.search, sort_keys=True)
    return {name: row[name] for name in NAMES}


def encode(record: SurveyRecord) -> list[Any]:
    """The record's values for ``INSERT``, in column order.

    Args:
        record: the record to store.
    """
    row = flat_row(record)
    for name in ARRAYS:
        row[name] = pack(row[name])
    for name in ("converged", "gradient_flat", "strict"):
        row[name] = None if row[name] is None else int(row[name])
    return [row[name] for name in NAMES]


def decode(row: dict[str, Any]) -> SurveyRecord:
    """The record of a stored row ({column: value}, as ``SELECT`` returned it).

    Args:
        row: the stored values by column name; derived columns are ignored.
    """
    return SurveyRecord(
        spec=RunSpec.from_dict(json.loads(row["spec"])),
        converged=bool(row["converged"]),
        gradient_flat=bool(row["gradient_flat"]),
        strict=None if row["strict"] is None else bool(row["strict"]),
        tolerance=Tolerance(row["grad_tol"], row["rtol"], row["atol"]),
        inertia=Inertia(row["n_neg"], row["n_zero"], row["n_pos"]),
        eigenvalues=unpack(row["eigenvalues"]),
        theta=unpack(row["theta"]),
        escape_direction=None
        if row["escape_direction"] is None
        else unpack(row["escape_direction"]),
        versions=json.loads(row["versions"]) if row["versions"] else {},
        search=_search(row.get("search")),
        **{name: row[name] for name in PLAIN},
    )


def _search(text: str | None) -> dict[str, Any]:
    """The stored search evidence ({} before schema 3); a table of values or an error."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInputError("a stored search record is not valid JSON: corrupted") from None
    if not isinstance(value, dict):
        raise InvalidInputError("a stored search record is not a table of values: corrupted")
    return value


def pack(values: np.ndarray | None) -> bytes | None:
    """Compressed little-endian float64 bytes of an array (None stays None).

    Args:
        values: the array to pack.
    """
    if values is None:
        return None
    return zlib.compress(np.asarray(values, dtype="<f8").tobytes())


def unpack(blob: bytes) -> np.ndarray:
    """Inverse of :func:`pack`, for untrusted bytes: size-capped, and a clear error if corrupt.

    At most :data:`MAX_ARRAY_BYTES` are inflated (a small crafted blob could inflate to
    gigabytes), and the result must be whole float64 numbers.

    Args:
        blob: the stored bytes.
    """
    if not isinstance(blob, bytes):
        raise InvalidInputError(f"a stored array is {type(blob).__name__}, not bytes: corrupted")
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(blob, MAX_ARRAY_BYTES)
    except zlib.error as err:
        raise InvalidInputError(f"a stored array is corrupted ({err})") from None
    if inflate.unconsumed_tail or not inflate.eof:
        raise InvalidInputError(
            f"a stored array inflates past {MAX_ARRAY_BYTES:,} bytes, or is cut short: refused"
        )
    if len(raw) % 8:
        raise InvalidInputError("a stored array is not whole float64 numbers: corrupted")
    return np.frombuffer(raw, dtype="<f8").astype(np.float64)
