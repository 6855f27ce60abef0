"""Checkpoints of running attempts on a real SQLite file: stored cheaply, used after a crash."""

from __future__ import annotations

from pathlib import Path

from hyperjoule.records import EnergyBlock, EnergyComponent, RunRecord, RunStatus
from hyperjoule.storage import AttemptCheckpoint, ResultsStore


def _running(run_id: str) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        study="s",
        session="x",
        slot_id="e0-1",
        target="t",
        model=None,
        mode="default",
        hyperparameters={},
        mutated=[],
        dedup_key="k",
        status=RunStatus.RUNNING,
        started_at="2026-01-01T00:00:00.000+00:00",
    )


def _checkpoint(attempt: int, duration_s: float, energy_j: float) -> AttemptCheckpoint:
    energy = EnergyBlock(
        {"cpu_pkg": EnergyComponent(energy_j, "estimated", ["cpu"], reason="estimate")}
    )
    return AttemptCheckpoint(attempt, "t0", f"t{duration_s}", duration_s, duration_s / 2, energy)


def test_stale_run_keeps_the_last_checkpoint_labelled_partial(tmp_path: Path) -> None:
    with ResultsStore(tmp_path) as store:
        store.insert_run(_running("r1"))
        store.checkpoint_run("r1", _checkpoint(1, 2.0, 20.0))
        store.checkpoint_run("r1", _checkpoint(1, 4.0, 40.0))  # the latest one counts
        store.insert_run(_running("r2"))  # killed before its first checkpoint
        assert len(store.mark_stale_running("s")) == 2
        with_cp, without = store.get_run("r1"), store.get_run("r2")
    assert with_cp is not None and without is not None
    assert with_cp.status is RunStatus.INTERRUPTED and with_cp.attempts == 1
    assert with_cp.duration_s == 4.0 and with_cp.cpu_time_s == 2.0
    assert with_cp.energy.partial and with_cp.energy.total_j == 40.0
    assert with_cp.energy.total_method == "estimated"
    assert with_cp.attempt_log == [
        {
            "attempt": 1,
            "status": "interrupted",
            "reason": with_cp.error,
            "exit_code": None,
            "signal": None,
            "started_at": "t0",
            "duration_s": 4.0,
            "cpu_time_s": 2.0,
            "energy_total_j": 40.0,
            "energy_method": "estimated",
            "partial": True,
        }
    ]
    assert without.status is RunStatus.INTERRUPTED and without.duration_s is None
    assert not without.energy.partial


def test_a_finished_record_ignores_later_checkpoints(tmp_path: Path) -> None:
    with ResultsStore(tmp_path) as store:
        record = _running("r1")
        store.insert_run(record)
        record.status = RunStatus.SUCCEEDED
        store.update_run(record)
        store.checkpoint_run("r1", _checkpoint(1, 2.0, 20.0))
        stored = store.get_run("r1")
    assert stored is not None and stored.status is RunStatus.SUCCEEDED
    assert not stored.energy.partial
