"""The survey store: version-free run identity, schema versions, records that keep their verdict."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sqlite3
import zlib

import numpy as np
import pytest
import torch

from saddlescope import InvalidInputError
from saddlescope.survey import (
    DataConfig,
    ModelConfig,
    ResultStore,
    RunSpec,
    SearchConfig,
    StudyConfig,
    TrainConfig,
    Verdict,
    reclassify,
    run_one,
    run_study,
    runner,
)
from saddlescope.tolerance import Tolerance, default_grad_tol, default_rtol


def tiny(seeds: int = 1) -> StudyConfig:
    return StudyConfig(
        name="tiny",
        seeds=seeds,
        data=DataConfig(n_samples=32, d_in=3, teacher_hidden=2),
        model=ModelConfig(hidden=((2,), (3,))),
        train=TrainConfig(steps=(0, 40)),
        search=SearchConfig(max_steps=60),
    )


@pytest.fixture(scope="module")
def saddle_record():
    return run_one(tiny().runs()[1])  # known to converge to a saddle


# ------------------------------------------------------------------------------ identity
def test_run_id_is_the_spec_not_the_library_versions(monkeypatch):
    spec = tiny().runs()[1]
    before = spec.run_id
    monkeypatch.setattr(torch, "__version__", "0.0.1+fake")
    again = tiny().runs()[1]
    assert again.run_id == before  # same spec → same id, whatever the versions
    back = RunSpec.from_dict(spec.to_dict())
    assert back == spec and back.run_id == before
    other = dataclasses.replace(spec, seed=spec.seed + 1)
    assert other.run_id != before
    renamed = dataclasses.replace(spec, study="another name")
    assert renamed.run_id == before  # the study's name does not change the result
    with pytest.raises(InvalidInputError, match="run spec"):
        RunSpec.from_dict({"study": "x"})


def test_study_tolerance_defaults_come_from_tolerance_module():
    cfg = StudyConfig()
    assert cfg.search.grad_tol == default_grad_tol(torch.float64) == 1e-8
    assert cfg.spectrum.rtol == default_rtol(torch.float64) == 1e-6
    spec = cfg.runs()[0]
    assert spec.tolerance == Tolerance.resolve(torch.float64)


# ------------------------------------------------------------------------------ content
def test_record_keeps_spec_tolerance_inertia_and_escape(tmp_path, saddle_record):
    r = saddle_record
    spec = tiny().runs()[1]
    assert r.spec == spec and r.run_id == spec.run_id
    assert r.tolerance == spec.tolerance == Tolerance(1e-8, 1e-6, 0.0)
    assert r.kind == "saddle" and r.inertia.n_neg >= 1 and not r.inertia.estimated
    assert r.threshold == pytest.approx(1e-6 * np.abs(r.eigenvalues).max(), rel=1e-12)
    assert r.verdict == Verdict("saddle", r.strict, r.inertia, r.threshold)
    u = r.escape_direction
    assert u is not None and u.shape == (r.num_params,)
    assert np.linalg.norm(u) == pytest.approx(1.0, abs=1e-12)
    assert r.escape_curvature == pytest.approx(r.eigenvalues.min(), rel=1e-9)
    assert set(r.versions) == {"saddlescope", "torch", "numpy", "scipy", "python"}
    assert r.versions["torch"] == torch.__version__
    with ResultStore(tmp_path / "s.db") as store:
        store.add(r)
        (back,) = store.records()
    assert back.to_dict() == r.to_dict()
    assert back.tolerance == r.tolerance and back.inertia == r.inertia and back.verdict == r.verdict
    assert back.escape_direction is not None
    assert np.array_equal(back.escape_direction, u) and back.versions == r.versions
    assert back.spec == r.spec
    with sqlite3.connect(tmp_path / "s.db") as conn:  # derived columns for SQL queries
        row = conn.execute(
            'SELECT n_neg, n_zero, n_pos, "index", seed, hidden FROM runs'
        ).fetchone()
    assert row == (r.inertia.n_neg, r.inertia.n_zero, r.inertia.n_pos, r.index, r.seed, r.hidden)


def test_a_minimum_has_no_escape_direction(tmp_path):
    records = [run_one(s) for s in tiny().runs()]
    minima = [r for r in records if r.kind == "minimum"]
    for r in minima:
        assert r.escape_direction is None and r.escape_curvature is None
    with ResultStore(tmp_path / "m.db") as store:
        for r in records:
            store.add(r)
        back = {b.run_id: b for b in store.records()}
    for r in records:
        assert (back[r.run_id].escape_direction is None) == (r.escape_direction is None)


# ------------------------------------------------------------------------------ resume
def test_version_bump_resumes_without_rerun(tmp_path, monkeypatch):
    db = tmp_path / "v.db"
    with monkeypatch.context() as m:
        m.setattr(torch, "__version__", "1.0.0+written-long-ago")
        first = run_study(tiny(), db)
    assert first.ran == 4
    with ResultStore(db, readonly=True) as store:
        assert {r.versions["torch"] for r in store.records()} == {"1.0.0+written-long-ago"}
    executed = []

    def counting(spec):
        executed.append(spec)
        return run_one(spec)

    monkeypatch.setattr(runner, "run_one", counting)
    second = run_study(tiny(), db)
    assert (second.planned, second.skipped, second.ran) == (4, 4, 0)
    assert executed == []
    third = run_study(tiny(2), db)  # a longer study: only the new seed runs
    assert third.ran == 4 and len(executed) == 4
    with ResultStore(db) as store:
        assert len(store) == 8
        torches = sorted(r.versions["torch"] for r in store.records())
    assert torches.count("1.0.0+written-long-ago") == 4 and torches.count(torch.__version__) == 4


# ------------------------------------------------------------------------------ verdict
def test_stored_verdict_equals_rebuilt_verdict(tmp_path):
    db = tmp_path / "r.db"
    run_study(tiny(), db)
    with ResultStore(db, readonly=True) as store:
        records = store.records()
    assert {r.kind for r in records} >= {"saddle"}
    for r in records:
        cp = reclassify(r)
        assert Verdict.of(cp) == r.verdict
        assert cp.tolerance == r.tolerance
        if r.escape_direction is not None:
            assert np.allclose(np.abs(cp.escape_direction.numpy()), np.abs(r.escape_direction))


# ------------------------------------------------------------------------------ schema
def test_schema_version_is_written_and_a_newer_one_refused(tmp_path):
    db = tmp_path / "n.db"
    with ResultStore(db):
        pass
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x53414444
        conn.execute("PRAGMA user_version = 99")
    for readonly in (False, True):
        with pytest.raises(InvalidInputError, match=r"newer saddlescope \(schema 99.*--db NEW"):
            ResultStore(db, readonly=readonly)


def test_schema2_file_is_read_as_it_is_and_upgraded_by_a_writer(tmp_path, saddle_record):
    db = tmp_path / "v2.db"
    with ResultStore(db) as store:
        store.add(saddle_record)
    assert saddle_record.search["phases"] and "flatness" in saddle_record.search
    with sqlite3.connect(db) as conn:  # what a schema-2 file is: no "search" column
        conn.execute('ALTER TABLE runs DROP COLUMN "search"')
        conn.execute("PRAGMA user_version = 2")
    with ResultStore(db, readonly=True) as store:
        (old,) = store.records()
    assert old.search == {} and old.result_dict() | {"search": {}} == old.result_dict()
    assert Verdict.of(old) == saddle_record.verdict
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2  # a reader wrote nothing
    with ResultStore(db) as store:
        (again,) = store.records()
        assert again.search == {}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        names = [row[1] for row in conn.execute('PRAGMA table_info("runs")')]
        assert names[-1] == "search"


OLD_COLUMNS = (
    "run_id TEXT PRIMARY KEY, study TEXT, config_hash TEXT, seed INTEGER, hidden TEXT, "
    "activation TEXT, train_steps INTEGER, num_params INTEGER, loss_trained REAL, "
    "loss_critical REAL, grad_norm REAL, converged INTEGER, gradient_flat INTEGER, status TEXT, "
    "search_steps INTEGER, hvps INTEGER, flatness REAL, kind TEXT, strict INTEGER, "
    'n_pos INTEGER, n_neg INTEGER, n_zero INTEGER, "index" REAL, minimum_ratio REAL, '
    "tolerance REAL, eigenvalues BLOB, theta BLOB, seconds_train REAL, seconds_search REAL, "
    "seconds_spectrum REAL"
)


def _old_row(r, old_id):
    blob = lambda a: zlib.compress(np.asarray(a, dtype="<f8").tobytes())  # noqa: E731
    i = r.inertia
    return (
        old_id, r.study, r.config_hash, r.seed, r.hidden, r.activation, r.train_steps,
        r.num_params, r.loss_trained, r.loss_critical, r.grad_norm, int(r.converged),
        int(r.gradient_flat), r.status, r.search_steps, r.hvps, r.flatness, r.kind,
        None if r.strict is None else int(r.strict), i.n_pos, i.n_neg, i.n_zero, r.index,
        r.minimum_ratio, r.threshold, blob(r.eigenvalues), blob(r.theta), 1.0, 2.0, 3.0,
    )  # fmt: skip


def _old_id(spec, torch_version):
    """A schema-1 id: the spec and the library versions hashed together."""
    text = f"{spec.to_dict()}{torch_version}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_schema1_file_opens_reads_and_resumes(tmp_path, saddle_record):
    import json

    r = saddle_record
    cfg = tiny()
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA application_id = {0x53414444}")
        conn.execute(f"CREATE TABLE runs ({OLD_COLUMNS})")
        conn.execute("CREATE TABLE studies (config_hash TEXT PRIMARY KEY, name TEXT, config TEXT)")
        conn.execute(
            "INSERT INTO studies VALUES (?, ?, ?)",
            (cfg.config_hash, cfg.name, json.dumps(cfg.to_dict(), sort_keys=True)),
        )
        marks = ", ".join("?" * 30)
        for version in ("2.1.0", "2.2.0"):  # the same run, stored twice by two torch versions
            conn.execute(
                f"INSERT INTO runs VALUES ({marks})", _old_row(r, _old_id(r.spec, version))
            )
    # read-only: read as it is, the file untouched
    with ResultStore(db, readonly=True) as store:
        (old,) = store.records()
        assert len(store) == 1 and store.completed_ids() == {r.run_id}
    assert old.run_id == r.run_id and old.spec == r.spec
    assert old.tolerance == r.tolerance and old.verdict == r.verdict
    assert np.array_equal(old.eigenvalues, r.eigenvalues) and np.array_equal(old.theta, r.theta)
    assert old.escape_direction is None and old.escape_curvature is None and old.versions == {}
    assert old.seconds_spectrum == 3.0
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert "tolerance" in [c[1] for c in conn.execute("PRAGMA table_info(runs)")]
    assert Verdict.of(reclassify(old)) == old.verdict  # rebuilt from a schema-1 row
    # opened for writing: upgraded in place; the stored run is not run again
    resumed = run_study(cfg, db, max_runs=2)
    assert (resumed.planned, resumed.skipped, resumed.ran) == (2, 1, 1)
    with ResultStore(db) as store:
        assert len(store) == 2
        migrated = store.record(r.run_id)
    assert migrated.verdict == r.verdict and migrated.versions == {}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        (dup,) = conn.execute("SELECT COUNT(*) FROM runs_schema1").fetchone()  # the 2nd copy
    assert dup == 1
    again = run_study(cfg, db, max_runs=2)
    assert again.ran == 0


def test_schema1_row_of_no_stored_study_is_a_clear_error(tmp_path, saddle_record):
    db = tmp_path / "orphan.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA application_id = {0x53414444}")
        conn.execute(f"CREATE TABLE runs ({OLD_COLUMNS})")
        conn.execute("CREATE TABLE studies (config_hash TEXT PRIMARY KEY, name TEXT, config TEXT)")
        conn.execute(
            f"INSERT INTO runs VALUES ({', '.join('?' * 30)})", _old_row(saddle_record, "x")
        )
    with pytest.raises(InvalidInputError, match="spec cannot be rebuilt"):
        ResultStore(db)
    with sqlite3.connect(db) as conn:  # the failed upgrade changed nothing
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_csv_text_cells_cannot_run_as_formulas(tmp_path):
    from saddlescope.survey.store import _cell

    assert _cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and _cell("@SUM(A1)") == "'@SUM(A1)"
    assert _cell("+1") == "'+1" and _cell("-cmd") == "'-cmd" and _cell("\tx") == "'\tx"
    assert _cell("saddle") == "saddle" and _cell(-1.5) == -1.5 and _cell(None) is None


def test_a_database_with_triggers_or_foreign_tables_is_refused(tmp_path, saddle_record):
    import sqlite3

    for extra in (
        "CREATE TRIGGER t AFTER INSERT ON runs BEGIN UPDATE runs SET kind = 'minimum'; END",
        "CREATE VIEW v AS SELECT run_id FROM runs",
        "CREATE TABLE loot (x)",
    ):
        db = tmp_path / f"{abs(hash(extra))}.db"
        with ResultStore(db) as store:
            store.add(saddle_record)
        with sqlite3.connect(db) as con:
            con.execute(extra)
        for readonly in (False, True):
            with pytest.raises(InvalidInputError, match="did not create"):
                ResultStore(db, readonly=readonly)


def test_stored_arrays_are_inflated_with_a_cap_and_checked():
    import zlib

    from saddlescope.survey.columns import MAX_ARRAY_BYTES, pack, unpack

    assert np.array_equal(unpack(pack(np.arange(5.0))), np.arange(5.0))
    bomb = zlib.compress(b"\0" * (MAX_ARRAY_BYTES + 8), 9)  # ~65 KB that inflate to 64 MiB+
    with pytest.raises(InvalidInputError, match="inflates past"):
        unpack(bomb)
    with pytest.raises(InvalidInputError, match="corrupted"):
        unpack(b"not zlib at all")
    with pytest.raises(InvalidInputError, match="whole float64"):
        unpack(zlib.compress(b"\0" * 7))


def test_closing_a_writer_folds_the_write_ahead_log_into_the_file(tmp_path, saddle_record):
    db = tmp_path / "wal.db"
    with ResultStore(db) as store:
        store.add(saddle_record)
        assert (tmp_path / "wal.db-wal").stat().st_size > 0  # written through the log
    wal = tmp_path / "wal.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    import sqlite3

    with sqlite3.connect(f"file:{db}?immutable=1", uri=True) as con:  # no -wal, no -shm needed
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


def test_a_reader_on_read_only_storage_opens_the_file_immutable(
    tmp_path, saddle_record, monkeypatch
):
    import sqlite3

    db = tmp_path / "ro.db"
    with ResultStore(db) as store:
        store.add(saddle_record)
    real = sqlite3.connect
    opened = []

    def read_only_storage(database, **kwargs):  # as on a read-only mount: no -shm can be made
        opened.append(database)
        if "immutable=1" not in database:
            return real(f"file:{tmp_path / 'missing' / 'x.db'}?mode=ro", **kwargs)
        return real(database, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only_storage)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # the folder is read-only too
    with ResultStore(db, readonly=True) as store:
        assert [r.run_id for r in store.records()] == [saddle_record.run_id]
    assert opened[-1].endswith("?mode=ro&immutable=1")


def test_a_reader_beside_a_live_writer_sees_its_commits_even_if_a_read_only_open_fails(
    tmp_path, saddle_record, monkeypatch
):
    # Where the folder is writable a reader must never open the file immutable: that ignores
    # the write-ahead log another process is still writing (and may read pages its checkpoint
    # is copying). Here every read-only open fails, as one could while that process works.
    import sqlite3

    db = tmp_path / "live.db"
    real = sqlite3.connect

    def busy_read_only(database, **kwargs):
        if "mode=ro" in database and "immutable" not in database:
            raise sqlite3.OperationalError("database is locked")
        return real(database, **kwargs)

    with ResultStore(db) as writer:  # open: its commits stay in the -wal file
        writer.add(saddle_record)
        assert (tmp_path / "live.db-wal").stat().st_size > 0
        monkeypatch.setattr(sqlite3, "connect", busy_read_only)
        with ResultStore(db, readonly=True) as reader:
            assert [r.run_id for r in reader.records()] == [saddle_record.run_id]
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                reader._conn.execute("DELETE FROM runs")  # query_only: it cannot write


def test_a_busy_file_is_not_called_damaged(tmp_path, monkeypatch):
    db = tmp_path / "busy.db"
    with ResultStore(db):
        pass
    calls = []
    real_connect = sqlite3.connect

    class Busy:
        """A connection whose first two quick_checks meet a lock held elsewhere."""

        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql, *args):
            if sql.startswith("PRAGMA quick_check") and len(calls) < 2:
                calls.append(sql)
                raise sqlite3.OperationalError("database is locked")
            return self.conn.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.conn, name)

    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: Busy(real_connect(*a, **k)))
    with ResultStore(db, readonly=True) as store:
        assert len(store) == 0
    assert len(calls) == 2  # tried again, then checked: not "damaged"
