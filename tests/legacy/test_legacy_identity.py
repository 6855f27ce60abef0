"""Importing the lab's real tree: each run once, whatever its ids, files and import order."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer

from hyperjoule import cli
from hyperjoule.cli._legacy import register
from hyperjoule.legacy import LEGACY_GPU_METHOD, import_legacy, read_legacy_results
from hyperjoule.records import RunRecord, RunStatus
from hyperjoule.storage import ResultsStore

FIXTURES = Path(__file__).parent.parent / "fixtures" / "legacy" / "lab_results"
SESSION = "run_20251120_100000"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the hand-written lab tree: raw_data.csv, a session with extra CSVs."""
    return Path(shutil.copytree(FIXTURES, tmp_path / "lab_results"))


def _stored(results: Path) -> list[RunRecord]:
    with ResultsStore(results, create=False) as store:
        return list(store.iter_runs())


def _by_id(records: list[RunRecord]) -> dict[str, RunRecord]:
    return {r.slot_id: r for r in records}


def _cli(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> int:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    monkeypatch.setattr(cli, "app", app)
    return cli.main(args)


def test_stage_prefixed_ids_are_one_run_with_aliases(tree: Path) -> None:
    records, merged, _ = read_legacy_results([tree / "raw_data.csv"], timezone="UTC")
    runs = _by_id(records)
    assert sorted(runs) == [
        "MRT-OAST_default_001",
        "MRT-OAST_default_002",
        "stage2__examples_mnist_001",
    ]
    mrt = runs["MRT-OAST_default_001"]
    assert mrt.provenance["legacy_aliases"] == ["default__MRT-OAST_default_001"]
    assert merged == 1
    assert mrt.session == "run_20251119_080000"  # raw_data.csv's experiment_source
    # With the session's own files, the lab's id names the run; the stage id is an alias.
    records, _, _ = read_legacy_results([tree], timezone="UTC")
    mnist = _by_id(records)["examples_mnist_001"]
    assert mnist.provenance["legacy_aliases"] == ["stage2__examples_mnist_001"]


def test_summary_timestamps_under_a_millisecond_off_are_the_same_runs(
    tree: Path, tmp_path: Path
) -> None:
    result = import_legacy([tree / SESSION], tmp_path / "results", timezone="Europe/Berlin")
    assert len(result.imported) == 3
    reasons = {d.reason for d in result.duplicates}
    assert "same id, timestamps 0.333 ms apart" in reasons
    run = _by_id(_stored(tmp_path / "results"))["examples_mnist_001"]
    # experiment.json's time wins, read as Berlin local time (UTC+1 in November).
    assert run.started_at == "2025-11-20T09:00:05.123456+00:00"
    assert run.provenance["legacy_timestamp"] == "2025-11-20T10:00:05.123456"


def test_oom_error_text_makes_an_oom_run(tree: Path) -> None:
    records, _, _ = read_legacy_results([tree / SESSION], timezone="UTC")
    oom = _by_id(records)["pytorch_resnet_cifar10_resnet20_003"]
    assert oom.status is RunStatus.OOM
    assert oom.error is not None and "CUDA out of memory" in oom.error
    # The failed run's cost is what its record holds: counted, not dropped.
    assert oom.attempt_log[0]["energy_total_j"] == pytest.approx(1210.0 + 80.5 + 9120.0)
    assert oom.attempt_log[0]["duration_s"] == 42.0


def test_conflicts_are_listed_with_the_winner_and_the_winner_is_selectable(
    tree: Path, tmp_path: Path
) -> None:
    result = import_legacy([tree / SESSION], tmp_path / "a", timezone="UTC")
    conflicts = [c for c in result.conflicts if c.field == "metrics.test_accuracy"]
    assert len(conflicts) == 2  # summary.csv and summary_all.csv both say 0.971
    assert {c.kept for c in conflicts} == {
        (str((tree / SESSION / "examples_mnist_002" / "experiment.json").resolve()), "97.1")
    }
    run = _by_id(_stored(tmp_path / "a"))["examples_mnist_002"]
    assert run.metrics["test_accuracy"] == 97.1

    chosen = import_legacy([tree / SESSION], tmp_path / "b", timezone="UTC", prefer=["summary.csv"])
    assert {c.kept[1] for c in chosen.conflicts if c.field == "metrics.test_accuracy"} == {"0.971"}
    assert _by_id(_stored(tmp_path / "b"))["examples_mnist_002"].metrics["test_accuracy"] == 0.971


def test_extra_csvs_are_read_or_skipped_with_a_reason(tree: Path, tmp_path: Path) -> None:
    result = import_legacy([tree], tmp_path / "results", timezone="UTC")
    files = {f.path.name: f for f in result.files}
    assert files["summary_all.csv"].rows == 2  # a results table: read, its rows merged
    assert files["summary_old.csv"].skipped == (
        "not a results table (no experiment_id, timestamp, training_success, repository column)"
    )
    assert files["gpu_power.csv"].skipped is not None
    assert len(result.imported) == 5


def test_cli_prints_the_import_table(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["import", str(tree), "--results-dir", str(tmp_path / "r"), "--timezone", "UTC"]
    assert _cli(monkeypatch, args) == 0
    out = capsys.readouterr().out
    assert "summary_old.csv" in out and "skipped: not a results table" in out
    assert "runs: 5 added" in out
    assert "id variants (e.g. stage-prefixed ids)" in out
    assert "2 conflict(s): the first source wins" in out
    assert "metrics.test_accuracy: kept 97.1 from" in out
    assert "timestamps read as UTC, stored in UTC" in out

    bad = ["import", str(tree), "--results-dir", str(tmp_path / "x"), "--timezone", "Mars/Base"]
    assert _cli(monkeypatch, bad) == 2
    assert "unknown time zone 'Mars/Base'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_machine_zone_is_the_default(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        records, _, _ = read_legacy_results([tree / "raw_data.csv"])
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    run = _by_id(records)["MRT-OAST_default_001"]
    assert run.started_at == "2025-11-19T00:00:00.250000+00:00"
    assert "local time" in run.provenance["legacy_timezone"]


def test_imported_energy_names_its_method(tree: Path) -> None:
    records, _, _ = read_legacy_results([tree / SESSION], timezone="UTC")
    run = _by_id(records)["examples_mnist_001"]
    assert run.energy.get("gpu").reason == LEGACY_GPU_METHOD
    assert run.provenance["measurement"]["gpu"] == LEGACY_GPU_METHOD
    assert run.power.samples is None


def _comparable(records: list[RunRecord]) -> list[dict[str, Any]]:
    out = []
    for record in sorted(records, key=lambda r: r.run_id):
        data = record.to_dict()
        data["provenance"] = {k: v for k, v in data["provenance"].items() if k != "imported_at"}
        out.append(data)
    return out


SOURCES = ("raw_data.csv", f"{SESSION}/summary.csv", f"{SESSION}/summary_all.csv", SESSION)


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(SOURCES)))))
def test_any_order_in_one_or_several_calls_gives_the_same_runs(
    tree: Path, tmp_path: Path, order: tuple[int, ...]
) -> None:
    paths = [tree / SOURCES[i] for i in order]
    import_legacy(paths, tmp_path / "one", timezone="UTC")
    one = _comparable(_stored(tmp_path / "one"))
    for path in paths:
        import_legacy([path], tmp_path / "several", timezone="UTC")
    several = _comparable(_stored(tmp_path / "several"))
    import_legacy(paths, tmp_path / "several", timezone="UTC")  # and once more: no change
    assert _comparable(_stored(tmp_path / "several")) == several
    assert several == one
    assert len(one) == 5
