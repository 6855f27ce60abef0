"""The report on an imported study: cost, targets, outliers and methods from the records."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hyperjoule.legacy import LEGACY_GPU_METHOD, import_legacy
from hyperjoule.report import energy_to_target, load_attempts, load_runs, study_cost, write_report
from hyperjoule.report.analysis._outliers import scale_outliers
from hyperjoule.report.analysis._summary import group_labels
from hyperjoule.report.analysis._target import auto_target_metric

FIXTURES = Path(__file__).parent.parent / "fixtures" / "legacy" / "lab_results"

# One model whose accuracy was logged on two scales (the lab's logging bug), another
# model on a scale of its own: thresholds and flags must be per target/model.
MIXED = """experiment_id,timestamp,repository,model,training_success,duration_seconds,\
perf_test_accuracy,energy_cpu_pkg_joules,energy_cpu_ram_joules,energy_gpu_total_joules
VulBERTa_mlp_001,2025-11-21T08:00:00.100000,VulBERTa,mlp,True,3441.5,0.75,50000,2000,800000
VulBERTa_mlp_002,2025-11-21T09:00:00.100000,VulBERTa,mlp,True,3420.0,0.76,49000,2000,790000
VulBERTa_mlp_003,2025-11-21T10:00:00.100000,VulBERTa,mlp,True,3300.0,4164,48000,2000,780000
VulBERTa_mlp_004,2025-11-21T11:00:00.100000,VulBERTa,mlp,True,3500.0,0.74,51000,2000,810000
"""


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("legacy_report")
    tree = Path(shutil.copytree(FIXTURES, root / "lab_results"))
    (tree / "mixed.csv").write_text(MIXED, encoding="utf-8")
    results = root / "results"
    import_legacy([tree], results, timezone="UTC")
    return results


def test_cost_counts_every_imported_run_failed_ones_included(imported: Path) -> None:
    cost = study_cost(load_runs(imported), load_attempts(imported))
    runs = load_runs(imported)
    assert cost.total_time_s == pytest.approx(runs["duration_s"].sum())
    assert cost.total_energy_j == pytest.approx(runs["energy_total_j"].sum())
    # The OOM run: 1,210 + 80.5 J CPU and 9,120 J GPU, 42 s.
    assert cost.wasted_energy_j == pytest.approx(1210.0 + 80.5 + 9120.0)


def test_energy_to_target_is_per_target_model(imported: Path) -> None:
    runs = load_runs(imported)
    target = auto_target_metric(runs)
    assert target is not None and target.per_group
    result = energy_to_target(runs, target).set_index("group")
    # Each model's own median: not one model's scale applied to all.
    assert result.loc["VulBERTa/mlp", "threshold"] == pytest.approx(0.755)
    assert result.loc["examples/mnist", "threshold"] == pytest.approx(96.6)
    assert result.loc["MRT-OAST", "skipped"] == "no succeeded run reports test_accuracy"
    assert result.loc["examples/mnist", "reached"] == 1


def test_a_metric_mixing_scales_within_a_model_is_flagged(imported: Path) -> None:
    runs = load_runs(imported)
    runs = runs.assign(group=group_labels(runs))
    flagged = scale_outliers(runs, ["metric_test_accuracy"])
    assert list(flagged["group"]) == ["VulBERTa/mlp"]
    assert list(flagged["value"]) == [4164.0]
    # examples/mnist (96.12 and 97.1) is on one scale: nothing flagged there.


def test_report_names_the_legacy_methods_and_flags(imported: Path) -> None:
    html = write_report(imported, imported / "report.html").path.read_text(encoding="utf-8")
    assert f"integrated: {LEGACY_GPU_METHOD}" in html
    assert "perf stat RAPL counters (legacy)" in html
    assert "flagged ⚠" in html and "4,164" in html
    assert "per target/model" in html
    assert "0 s of run time" not in html
    # The 2 + 1 retries of imported runs were never recorded: said, not hidden.
    assert "3 attempt(s) counted by their runs left no entry" in html
