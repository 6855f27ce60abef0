"""Carbon estimates through the CLI: from a given intensity, from a bundled region, refused
for an unknown region, unavailable (never 0) without energy."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from conftest import Project
from hyperjoule.carbon import J_PER_KWH, grid_intensities
from hyperjoule.cli import main
from hyperjoule.config import CarbonConfig
from hyperjoule.records import RunRecord
from hyperjoule.storage import ResultsStore, flat_row


def _run(project: Project, carbon: dict[str, object]) -> list[RunRecord]:
    study = project.write_study([{"target": "toy", "model": "small"}], carbon=carbon)
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    with ResultsStore(project.results, create=False) as store:
        return list(store.iter_runs())


@pytest.mark.parametrize(
    ("carbon", "intensity", "pue", "source"),
    [
        ({"intensity_g_per_kwh": 400, "pue": 1.5}, 400.0, 1.5, "study file"),
        ({"region": "deu"}, grid_intensities()["DEU"].intensity_g_per_kwh, 1.0, "CC BY 4.0"),
    ],
)
def test_carbon_figures_in_records_summary_runs_export_and_report(
    project: Project,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    carbon: dict[str, object],
    intensity: float,
    pue: float,
    source: str,
) -> None:
    (record,) = _run(project, carbon)
    out = capsys.readouterr().out
    total_j = record.energy.total_j
    assert total_j is not None and total_j > 0  # the labelled CPU estimate at least
    expected_g = total_j / J_PER_KWH * pue * intensity
    block = record.carbon
    assert block is not None
    assert block.co2e_g == pytest.approx(expected_g)
    assert (block.intensity_g_per_kwh, block.pue, block.method) == (intensity, pue, "estimated")
    assert source in block.source
    if "region" in carbon:
        assert (block.region, block.year) == ("DEU", grid_intensities()["DEU"].year)
    assert "g CO2e (estimate)" in out  # the run's line and the session's spending line
    on_disk = json.loads((Path(str(record.run_dir)) / "run.json").read_text())
    assert on_disk["carbon"]["co2e_g"] == pytest.approx(expected_g)

    (summary,) = project.results.glob("s/*/summary.csv")
    (row,) = csv.DictReader(io.StringIO(summary.read_text(encoding="utf-8")))
    assert float(row["carbon_co2e_grams"]) == pytest.approx(expected_g)
    assert float(row["carbon_intensity_grams_per_kwh"]) == intensity

    results = str(project.results)
    assert main(["runs", "--results-dir", results, "--format", "csv"]) == 0
    (flat,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert float(flat["carbon_co2e_g"]) == pytest.approx(expected_g)
    assert float(flat["carbon_pue"]) == pue and source in flat["carbon_source"]
    assert main(["runs", "--results-dir", results, "--sort", "-carbon_co2e_g"]) == 0
    assert "CO2e est." in capsys.readouterr().out
    html = tmp_path / "r.html"
    assert main(["report", "--results-dir", results, "-o", str(html)]) == 0
    text = html.read_text(encoding="utf-8")
    assert "Estimated carbon" in text and "<i>estimate</i>" in text


@pytest.mark.parametrize(
    ("carbon", "field"),
    [
        ({"region": "XYZ"}, "carbon.region"),
        ({"region": "DEU", "intensity_g_per_kwh": 300}, "carbon"),
        ({"pue": 1.2}, "carbon"),
        ({"intensity_g_per_kwh": 0}, "carbon.intensity_g_per_kwh"),
        ({"intensity_g_per_kwh": 300, "pue": 0.5}, "carbon.pue"),
    ],
)
def test_bad_carbon_settings_exit_2_with_one_line(
    project: Project, capsys: pytest.CaptureFixture[str], carbon: dict[str, object], field: str
) -> None:
    study = project.write_study([{"target": "toy", "model": "small"}], carbon=carbon)
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and f"{field}:" in err
    assert not project.results.exists()
    if carbon.get("region") == "XYZ":
        assert "DEU" in err  # names the regions it knows


def test_no_energy_means_no_co2e_not_zero() -> None:
    block = CarbonConfig(intensity_g_per_kwh=400).estimate(None, None, "gpu: no NVML")
    assert block.co2e_g is None and block.attempts_co2e_g is None
    assert block.reason is not None and "gpu: no NVML" in block.reason


def test_bundled_table_is_sane() -> None:
    table = grid_intensities()
    assert len(table) >= 10
    for code, grid in table.items():
        assert len(code) == 3 and code.isupper() and grid.year >= 2020
        assert 10 <= grid.intensity_g_per_kwh <= 1200


def test_summary_cells_are_empty_without_a_carbon_setting(project: Project) -> None:
    (record,) = _run(project, {"intensity_g_per_kwh": 100})
    record.carbon = None
    assert flat_row(record)["carbon_co2e_grams"] is None
