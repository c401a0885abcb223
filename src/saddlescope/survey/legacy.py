"""Files of schema 1 (before run specs, tolerances and versions were kept): read and upgrade.

Schema 1 identified a run by a hash that included the library versions, so the same run had a
new id after every upgrade. Its rows still hold everything needed to rebuild the spec: the
study's config is stored (by hash) and a run is the (widths, training steps, seed) of that
config. Each row becomes a :class:`SurveyRecord` under its version-free id; the tolerance comes
from the spec, the inertia and the threshold from the row. What schema 1 did not keep is left
unknown, not recomputed: the escape direction and curvature (None) and the versions (empty).
Two rows of one run (written under two library versions) become one record: the first written.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Any

from saddlescope.errors import InvalidInputError
from saddlescope.survey.columns import PLAIN, unpack
from saddlescope.survey.config import RunSpec, StudyConfig
from saddlescope.survey.record import SurveyRecord
from saddlescope.tolerance import Inertia

__all__ = ["LEGACY_COLUMNS", "legacy_records"]

#: The columns of a schema-1 ``runs`` table, in order.
LEGACY_COLUMNS = (
    "run_id",
    "study",
    "config_hash",
    "seed",
    "hidden",
    "activation",
    "train_steps",
    "num_params",
    "loss_trained",
    "loss_critical",
    "grad_norm",
    "converged",
    "gradient_flat",
    "status",
    "search_steps",
    "hvps",
    "flatness",
    "kind",
    "strict",
    "n_pos",
    "n_neg",
    "n_zero",
    "index",
    "minimum_ratio",
    "tolerance",
    "eigenvalues",
    "theta",
    "seconds_train",
    "seconds_search",
    "seconds_spectrum",
)

_SAME = tuple(n for n in PLAIN if n not in ("threshold", "escape_curvature"))  # not in schema 1


def legacy_records(conn: sqlite3.Connection) -> list[tuple[str, SurveyRecord]]:
    """(old run id, record) of every schema-1 row of one run, first-written first.

    Args:
        conn: an open connection to a schema-1 file.
    """
    configs = {
        h: StudyConfig.from_dict(json.loads(text))
        for h, text in conn.execute("SELECT config_hash, config FROM studies")
    }
    names = ", ".join(f'"{c}"' for c in LEGACY_COLUMNS)
    out: list[tuple[str, SurveyRecord]] = []
    seen: set[str] = set()
    for values in conn.execute(f"SELECT {names} FROM runs ORDER BY rowid"):
        row = dict(zip(LEGACY_COLUMNS, values))
        record = _record(row, _spec(row, configs))
        if record.run_id not in seen:
            seen.add(record.run_id)
            out.append((row["run_id"], record))
    return out


def _spec(row: dict[str, Any], configs: dict[str, StudyConfig]) -> RunSpec:
    """The spec of a schema-1 row: its (widths, steps, seed) in its study's stored config."""
    config = configs.get(row["config_hash"])
    if config is not None:
        hidden = tuple(int(w) for w in str(row["hidden"]).split("-"))
        for spec in dataclasses.replace(config, seeds=int(row["seed"]) + 1).runs():
            if (spec.hidden, spec.train_steps, spec.seed) == (
                hidden,
                row["train_steps"],
                row["seed"],
            ):
                return dataclasses.replace(spec, study=row["study"])
    raise InvalidInputError(
        f"run {row['run_id']} of the schema-1 file is not a run of any study stored in it; "
        "its spec cannot be rebuilt"
    )


def _record(row: dict[str, Any], spec: RunSpec) -> SurveyRecord:
    return SurveyRecord(
        spec=spec,
        converged=bool(row["converged"]),
        gradient_flat=bool(row["gradient_flat"]),
        strict=None if row["strict"] is None else bool(row["strict"]),
        tolerance=spec.tolerance,
        threshold=row["tolerance"],
        inertia=Inertia(row["n_neg"], row["n_zero"], row["n_pos"]),
        eigenvalues=unpack(row["eigenvalues"]),
        theta=unpack(row["theta"]),
        escape_direction=None,
        escape_curvature=None,
        versions={},
        **{name: row[name] for name in _SAME},
    )
