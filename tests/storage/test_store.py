"""The results database and run directories, against real SQLite files under tmp_path."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hyperjoule.errors import StorageError
from hyperjoule.records import (
    BackgroundSpec,
    EnergyBlock,
    EnergyComponent,
    PowerBlock,
    RunRecord,
    RunSpec,
    RunStatus,
)
from hyperjoule.storage import (
    DB_FILENAME,
    MIGRATIONS,
    SCHEMA_VERSION,
    ResultsStore,
    new_run_id,
    new_session_id,
    read_run_json,
    run_dir,
    session_dir,
    write_run_json,
)
from hyperjoule.storage import _schema as schema


def make_record(
    run_id: str | None = None,
    *,
    study: str = "st",
    session: str = "s1",
    slot_id: str = "e0-0",
    target: str = "toy",
    model: str | None = "small",
    dedup_key: str = "k0",
    status: RunStatus = RunStatus.SUCCEEDED,
    started_at: str | None = "2025-01-01T00:00:00.000+00:00",
    duration_s: float | None = 10.0,
    **extra: Any,
) -> RunRecord:
    return RunRecord(
        run_id=run_id or new_run_id(),
        study=study,
        session=session,
        slot_id=slot_id,
        target=target,
        model=model,
        mode="mutation",
        hyperparameters={"epochs": 3, "lr": 0.01, "optim": "adam", "amp": True},
        mutated=["epochs", "lr"],
        dedup_key=dedup_key,
        status=status,
        attempts=1,
        exit_code=0,
        started_at=started_at,
        duration_s=duration_s,
        **extra,
    )


def full_record() -> RunRecord:
    """A record with every block filled, including None figures with reasons."""
    return make_record(
        "r-full",
        ended_at="2025-01-01T00:00:10.000+00:00",
        cpu_time_s=9.5,
        metrics={"test_accuracy": 0.97, "loss": 0.12},
        energy=EnergyBlock(
            components={
                "gpu": EnergyComponent(
                    energy_j=1234.5, method="counter", devices=["gpu0"], sampling_period_s=0.1
                ),
                "cpu_pkg": EnergyComponent(
                    energy_j=321.0, method="counter", devices=["package-0"], wraps=1
                ),
                "cpu_dram": EnergyComponent.unavailable("no DRAM domain in RAPL"),
            }
        ),
        power=PowerBlock(
            gpu_avg_w=123.4, gpu_max_w=250.0, gpu_min_w=50.0, gpu_temp_avg_c=60.0, samples=100
        ),
        background={"target": "bg", "runs": 2, "effective": True},
        attempt_log=[{"attempt": 1, "status": "succeeded", "exit_code": 0}],
        command=["python", "train.py", "--epochs", "3"],
        run_dir="/tmp/x",
        provenance={"host": {"hostname": "h"}, "path": Path("/some/where")},
    )


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with ResultsStore(tmp_path / "results") as s:
        yield s


# -- ids and layout ------------------------------------------------------------------------


def test_ids_are_unique_and_shaped() -> None:
    run_ids = {new_run_id() for _ in range(500)}
    assert len(run_ids) == 500
    assert all(re.fullmatch(r"r\d{8}T\d{6}-[0-9a-f]{8}", i) for i in run_ids)
    assert re.fullmatch(r"s\d{8}T\d{6}-[0-9a-f]{8}", new_session_id())


def test_run_and_session_dirs(tmp_path: Path) -> None:
    assert session_dir(tmp_path, "st", "s1") == tmp_path / "st" / "s1"
    assert run_dir(tmp_path, "st", "s1", "r1") == tmp_path / "st" / "s1" / "r1"
    with pytest.raises(StorageError, match="directory name"):
        session_dir(tmp_path, "../evil", "s1")


def test_run_json_round_trip_is_atomic(tmp_path: Path) -> None:
    record = full_record()
    path = write_run_json(tmp_path, record)
    assert path == tmp_path / "run.json"
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind
    data = json.loads(path.read_text())
    assert data["energy"]["cpu_dram_j"] is None
    assert data["energy"]["components"]["cpu_dram"]["reason"] == "no DRAM domain in RAPL"
    assert data["provenance"]["path"] == "/some/where"
    back = read_run_json(path)
    assert back.energy == record.energy and back.power == record.power
    assert back.metrics == record.metrics and back.status is RunStatus.SUCCEEDED
    record.status = RunStatus.FAILED
    write_run_json(tmp_path, record)  # replaces the file
    assert read_run_json(tmp_path).status is RunStatus.FAILED


def test_damaged_run_json_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(StorageError, match="run.json"):
        read_run_json(tmp_path / "run.json")


# -- opening, schema, migrations -----------------------------------------------------------


def test_new_database_is_wal_with_schema_version(tmp_path: Path) -> None:
    results = tmp_path / "deep" / "results"
    ResultsStore(results).close()
    conn = sqlite3.connect(results / DB_FILENAME)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        assert int(version[0]) == SCHEMA_VERSION == len(MIGRATIONS)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"meta", "sessions", "plans", "runs"} <= tables
        indexes = {r[0] for r in conn.execute("SELECT sql FROM sqlite_master WHERE type='index'")}
        assert any("(target, model)" in (s or "") for s in indexes)
    finally:
        conn.close()


def test_missing_database_without_create(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=r"no results database \(hyperjoule.db\)"):
        ResultsStore(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    ResultsStore(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key='schema_version'", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(StorageError, match="upgrade hyperjoule"):
        ResultsStore(tmp_path, create=False)


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / DB_FILENAME).write_bytes(b"this is not a database, just text\n" * 200)
    with pytest.raises(StorageError, match=re.escape(str(tmp_path / DB_FILENAME))):
        ResultsStore(tmp_path)


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    with conn:
        conn.execute("CREATE TABLE other (x)")
    conn.close()
    with pytest.raises(StorageError, match="not a hyperjoule one"):
        ResultsStore(tmp_path)


def test_version_zero_database_is_migrated(tmp_path: Path) -> None:
    # A database that only has the meta table at version 0 (the state before any migration).
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    with conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('schema_version', '0')")
    conn.close()
    with ResultsStore(tmp_path, create=False) as store:
        store.insert_run(make_record("r1"))
        assert store.get_run("r1") is not None
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    assert conn.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION)
    conn.close()


def test_later_migrations_are_applied_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ResultsStore(tmp_path) as store:
        store.insert_run(make_record("r1"))

    def add_column(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE runs ADD COLUMN note TEXT")
        conn.execute("UPDATE runs SET note = 'migrated'")

    monkeypatch.setattr(schema, "MIGRATIONS", (*MIGRATIONS, add_column))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with ResultsStore(tmp_path, create=False) as store:
        record = store.get_run("r1")
        assert record is not None and record.run_id == "r1"
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    assert conn.execute("SELECT note FROM runs").fetchone()[0] == "migrated"
    assert conn.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION + 1)
    conn.close()


def test_failed_migration_leaves_database_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ResultsStore(tmp_path).close()

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE runs ADD COLUMN note TEXT")
        conn.execute("SELECT * FROM no_such_table")

    monkeypatch.setattr(schema, "MIGRATIONS", (*MIGRATIONS, broken))
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StorageError, match="cannot upgrade"):
        ResultsStore(tmp_path)
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(runs)")]
    assert "note" not in columns
    assert conn.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION)
    conn.close()


# -- runs ----------------------------------------------------------------------------------


def test_record_round_trip(store: ResultsStore) -> None:
    record = full_record()
    store.insert_run(record)
    back = store.get_run("r-full")
    assert back is not None
    # Plain objects in provenance (a Path here) are stored as text.
    assert back.to_dict() == json.loads(json.dumps(record.to_dict(), default=str))
    assert back.provenance["path"] == "/some/where"
    assert back.energy.get("cpu_dram").energy_j is None
    assert back.power.gpu_util_avg_pct is None
    assert back.hyperparameters == {"epochs": 3, "lr": 0.01, "optim": "adam", "amp": True}
    assert store.get_run("missing") is None


def test_query_columns_follow_the_record(tmp_path: Path) -> None:
    with ResultsStore(tmp_path) as store:
        store.insert_run(full_record())
    conn = sqlite3.connect(tmp_path / DB_FILENAME)
    row = conn.execute(
        "SELECT status, model, duration_s, energy_total_j FROM runs WHERE run_id='r-full'"
    ).fetchone()
    conn.close()
    assert row == ("succeeded", "small", 10.0, pytest.approx(1555.5))


def test_update_run(store: ResultsStore) -> None:
    record = make_record("r1", status=RunStatus.RUNNING, duration_s=None)
    store.insert_run(record)
    record.status = RunStatus.FAILED
    record.duration_s = 3.5
    record.error = "exit code 3"
    store.update_run(record)
    back = store.get_run("r1")
    assert back is not None and back.status is RunStatus.FAILED and back.error == "exit code 3"
    with pytest.raises(StorageError, match="no such run"):
        store.update_run(make_record("unknown"))
    with pytest.raises(StorageError, match="r1"):
        store.insert_run(make_record("r1"))  # run ids are unique


def test_insert_is_durable_for_another_connection(tmp_path: Path) -> None:
    writer = ResultsStore(tmp_path)
    try:
        writer.insert_run(make_record("r1"))
        with ResultsStore(tmp_path, create=False) as reader:
            assert [r.run_id for r in reader.iter_runs()] == ["r1"]
            writer.insert_run(make_record("r2"))
            assert reader.get_run("r2") is not None
    finally:
        writer.close()


def test_iter_runs_filters_and_orders(store: ResultsStore) -> None:
    store.insert_run(make_record("r3", started_at="2025-01-03T00:00:00"))
    store.insert_run(make_record("r1", started_at="2025-01-01T00:00:00"))
    store.insert_run(make_record("r2b", started_at="2025-01-02T00:00:00", session="s2"))
    store.insert_run(make_record("r2a", started_at="2025-01-02T00:00:00", study="other"))
    assert [r.run_id for r in store.iter_runs()] == ["r1", "r2a", "r2b", "r3"]
    assert [r.run_id for r in store.iter_runs(study="st")] == ["r1", "r2b", "r3"]
    assert [r.run_id for r in store.iter_runs(study="st", session="s2")] == ["r2b"]
    assert list(store.iter_runs(study="nope")) == []
    assert store.studies() == ["other", "st"]
    assert [r.run_id for r in store.iter_runs(run_id_prefix="r2")] == ["r2a", "r2b"]
    assert [r.run_id for r in store.iter_runs(run_id_prefix="r2%")] == []  # not a pattern


def test_finished_slots_exclude_interrupted_and_running(store: ResultsStore) -> None:
    statuses = {
        "e0-0": RunStatus.SUCCEEDED,
        "e0-1": RunStatus.FAILED,
        "e0-2": RunStatus.OOM,
        "e0-3": RunStatus.INTERRUPTED,
        "e0-4": RunStatus.RUNNING,
        "e0-5": RunStatus.TIMEOUT,
    }
    for slot, status in statuses.items():
        store.insert_run(make_record(slot_id=slot, dedup_key=f"k{slot}", status=status))
    store.insert_run(make_record(study="other", slot_id="e9-9", dedup_key="x"))
    assert store.finished_slots("st") == {
        ("e0-0", "ke0-0"),
        ("e0-1", "ke0-1"),
        ("e0-2", "ke0-2"),
        ("e0-5", "ke0-5"),
    }


def test_measured_keys_per_target_and_model(store: ResultsStore) -> None:
    store.insert_run(make_record(model="small", dedup_key="a"))
    store.insert_run(make_record(model="small", dedup_key="b", status=RunStatus.FAILED))
    store.insert_run(make_record(model="small", dedup_key="c", status=RunStatus.INTERRUPTED))
    store.insert_run(make_record(model="large", dedup_key="d", study="other"))
    store.insert_run(make_record(model=None, dedup_key="e"))
    store.insert_run(make_record(model=None, dedup_key="f", status=RunStatus.RUNNING))
    store.insert_run(make_record(target="other", model=None, dedup_key="g"))
    assert store.measured_keys("toy", "small") == {"a", "b"}
    assert store.measured_keys("toy", "large") == {"d"}  # any study
    assert store.measured_keys("toy", None) == {"e"}
    assert store.measured_keys("other", None) == {"g"}
    assert store.measured_keys("toy", "none") == set()


def test_durations_of_succeeded_runs(store: ResultsStore) -> None:
    store.insert_run(make_record(duration_s=10.0))
    store.insert_run(make_record(duration_s=20.0, status=RunStatus.FAILED))
    store.insert_run(make_record(duration_s=None))
    store.insert_run(make_record(duration_s=30.0, model=None))
    assert store.durations_s("toy", "small") == [10.0]
    assert store.durations_s("toy", None) == [30.0]
    assert store.durations_s("nope", None) == []


def test_mark_stale_running(store: ResultsStore) -> None:
    session = store.begin_session("st", config={"seed": 1})
    store.insert_run(
        make_record("r1", session=session, slot_id="e0-1", dedup_key="k1", status=RunStatus.RUNNING)
    )
    store.insert_run(make_record("r2", session=session, status=RunStatus.SUCCEEDED))
    store.insert_run(make_record("r3", study="other", status=RunStatus.RUNNING))
    assert len(store.mark_stale_running("st")) == 1
    stale = store.get_run("r1")
    assert stale is not None and stale.status is RunStatus.INTERRUPTED
    assert stale.error == "runner stopped before the run finished"
    assert store.get_run("r2").status is RunStatus.SUCCEEDED  # type: ignore[union-attr]
    assert store.get_run("r3").status is RunStatus.RUNNING  # type: ignore[union-attr]
    assert store.mark_stale_running("st") == []
    assert store.finished_slots("st") == {("e0-0", "k0")}  # r1's slot will run again
    conn = sqlite3.connect(store.path)
    row = conn.execute("SELECT status FROM runs WHERE run_id='r1'").fetchone()
    session_status = conn.execute("SELECT status FROM sessions").fetchone()
    conn.close()
    assert row == ("interrupted",) and session_status == ("interrupted",)


# -- plans and sessions --------------------------------------------------------------------


def test_plan_round_trip_and_upsert(store: ResultsStore) -> None:
    specs = [
        RunSpec(
            slot_id="e0-0",
            study="st",
            experiment=0,
            target="toy",
            model=None,
            mode="parallel",
            hyperparameters={"epochs": 3, "lr": 0.5, "optim": "sgd", "amp": False},
            mutated=("lr",),
            dedup_key="k",
            max_retries=2,
            cooldown_s=1.5,
            background=(BackgroundSpec("bg", "m", {"epochs": 50}),),
        )
    ]
    assert store.load_plan("st") is None
    store.save_plan("st", "hash1", specs)
    assert store.load_plan("st") == ("hash1", specs)
    store.save_plan("st", "hash2", [])
    assert store.load_plan("st") == ("hash2", [])
    assert store.studies() == ["st"]


def test_sessions(store: ResultsStore) -> None:
    first = store.begin_session("st", config={"name": "st", "path": Path("/x")})
    second = store.begin_session("st", config={})
    assert first != second and first.startswith("s")
    store.end_session(first, "completed")
    with pytest.raises(StorageError, match="no such session"):
        store.end_session("s-unknown", "completed")
    conn = sqlite3.connect(store.path)
    rows = dict(conn.execute("SELECT session, status FROM sessions").fetchall())
    config = conn.execute("SELECT config_json FROM sessions WHERE session=?", (first,)).fetchone()
    conn.close()
    assert rows == {first: "completed", second: "running"}
    assert json.loads(config[0]) == {"name": "st", "path": "/x"}


def test_closed_store_raises_storage_error(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StorageError):
        store.get_run("r1")


def test_concurrent_writers_from_separate_processes(tmp_path: Path) -> None:
    # Several processes create and write the same fresh database at once: the busy timeout
    # and the locked migration must make every write land exactly once.
    script = (
        "import sys\n"
        "from hyperjoule.records import RunRecord, RunStatus\n"
        "from hyperjoule.storage import ResultsStore\n"
        "with ResultsStore(sys.argv[1]) as store:\n"
        "    for i in range(20):\n"
        "        store.insert_run(RunRecord(run_id=f'{sys.argv[2]}-{i}', study='st', session='s',\n"
        "            slot_id='e0-0', target='t', model=None, mode='default', hyperparameters={},\n"
        "            mutated=[], dedup_key='k', status=RunStatus.SUCCEEDED))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path), f"p{n}"]) for n in range(4)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    with ResultsStore(tmp_path, create=False) as store:
        assert len({r.run_id for r in store.iter_runs()}) == 80
