"""The HTML report: sections, figures, methods, cost, timeline; built from a real database."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from report_data import energy_block, epochs_study, record, store

from hyperjoule.records import RunStatus
from hyperjoule.report import (
    ReportError,
    energy_to_target,
    group_summary,
    load_tables,
    parallel_vs_isolated,
    parse_target_metric,
    study_cost,
    write_report,
)
from hyperjoule.report._pool import FigurePool
from hyperjoule.report.render._figure_draw import draw_summary

PNG = re.compile(r"<img src='data:image/png;base64,([A-Za-z0-9+/=]+)'")


def cli(args: list[str]) -> int:
    """Run the real CLI in-process."""
    from hyperjoule.cli import main

    return main(args)


def write_timeline(run_dir: Path) -> None:
    (run_dir / "energy").mkdir(parents=True)
    lines = ["time_s,gpu,power_w,temp_c,util_pct,mem_util_pct,mem_used_mib,sm_clock_mhz"]
    for k in range(50):
        for gpu in (0, 1):
            lines.append(f"{k * 0.1:.1f},{gpu},{200 + 50 * gpu + k},{40 + k / 5},{90},10,1000,1500")
    (run_dir / "energy" / "gpu.csv").write_text("\n".join(lines) + "\n")


def study(results: Path) -> Path:
    """Epochs drive energy; one failed retried run; parallel twins of two configurations."""
    records = epochs_study(40)
    failed_log = [
        {
            "attempt": 1,
            "status": "failed",
            "exit_code": 1,
            "duration_s": 3.0,
            "energy_total_j": 30.0,
            "energy_method": "counter",
        },
        {
            "attempt": 2,
            "status": "failed",
            "exit_code": 1,
            "duration_s": 3.0,
            "energy_total_j": 35.0,
            "energy_method": "counter",
        },
    ]
    records.append(
        record(
            40,
            hps={"epochs": 9, "lr": 0.01, "batch_size": 32, "optimizer": "sgd"},
            status=RunStatus.FAILED,
            energy=energy_block(35.0),
            attempt_log=failed_log,
        )
    )
    for k, twin in enumerate(records[:2]):
        gpu = (twin.energy.total_j or 0) * 1.5
        records.append(
            record(
                41 + k,
                hps=dict(twin.hyperparameters),
                mode="parallel",
                metrics=dict(twin.metrics),
                energy=energy_block(gpu, attribution="combined"),
                background={"target": "toy", "model": "large", "effective": True, "runs": 2},
            )
        )
    with_timeline = tmp_run = results / "syn" / "s1" / "r000010"
    write_timeline(tmp_run)
    records[10].run_dir = str(with_timeline)
    records[10].power.samples = 50
    return store(results, records)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    results = study(tmp_path_factory.mktemp("html") / "results")
    info = write_report(results, results / "report.html", target_metric="test_accuracy>=0.93")
    assert info.timeline_run == "r000010"
    assert info.target == "test_accuracy >= 0.93"
    return results, info.path.read_text()


def test_every_section_is_there(report: tuple[Path, str]) -> None:
    _results, html = report
    for anchor in (
        "summary",
        "pareto",
        "target",
        "hyperparameters",
        "parallel",
        "cost",
        "timeline",
        "methods",
    ):
        assert f"<section id='{anchor}'>" in html
    assert "hyperjoule report: syn" in html
    assert "class='pareto'" in html and "class='sensitivity'" in html


def test_figures_are_embedded_pngs_and_nothing_is_remote(report: tuple[Path, str]) -> None:
    _results, html = report
    images = PNG.findall(html)
    assert len(images) >= 6
    for data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert not re.search(r"""(src|href)=['"]?(https?:)?//""", html)
    assert "<script" not in html
    assert "@media print" in html


def test_methods_are_visible(report: tuple[Path, str]) -> None:
    _results, html = report
    assert "<span class='badge m-counter'>counter</span>" in html
    assert "ESTIMATE" not in html.split("<section id='methods'>")[0]  # nothing estimated
    assert "Spearman rho, Fisher-z 95% CI" in html


def test_epochs_lead_the_sensitivity_table(report: tuple[Path, str]) -> None:
    _results, html = report
    table = html.split("class='sensitivity'")[1].split("</table>")[0]
    first_row = table.split("<tbody>")[1].split("</tr>")[0]
    assert "<td>epochs</td>" in first_row


def test_cost_counts_failed_attempts(report: tuple[Path, str]) -> None:
    results, _html = report
    tables = load_tables(results)
    cost = study_cost(tables.runs, tables.attempts)
    by_status = cost.by_status.set_index("status")
    assert by_status.loc["failed", "energy_j"] == pytest.approx(65.0)
    assert by_status.loc["failed", "retries"] == 1
    assert cost.wasted_energy_j == pytest.approx(65.0)
    assert cost.total_energy_j == pytest.approx(tables.runs["attempts_energy_total_j"].sum())


def test_parallel_comparison_pairs_same_configurations(report: tuple[Path, str]) -> None:
    results, html = report
    comparison = parallel_vs_isolated(load_tables(results).runs)
    assert comparison is not None
    assert len(comparison.matched) == 2
    assert comparison.matched["energy_ratio"].tolist() == pytest.approx([1.5, 1.5])
    assert "2 configuration(s) ran both ways" in html


def test_energy_to_target_and_summary(report: tuple[Path, str]) -> None:
    results, _html = report
    runs = load_tables(results).runs
    target = parse_target_metric("test_accuracy>=0.93", list(runs.columns))
    result = energy_to_target(runs, target).set_index("group").loc["toy/small"]
    ok = runs[(runs["status"] == "succeeded") & (runs["metric_test_accuracy"] >= 0.93)]
    assert result["reached"] == len(ok)
    assert result["min_energy_j"] == pytest.approx(ok["energy_total_j"].min())
    summary = group_summary(runs).set_index("group").loc["toy/small"]
    assert summary["runs"] == len(runs)
    assert summary["succeeded"] == len(runs) - 1
    assert summary["energy_total_j_low"] < summary["energy_total_j_mean"]


def test_timeline_of_the_chosen_run(report: tuple[Path, str]) -> None:
    results, html = report
    assert "GPU power, temperature and utilisation of run <code>r000010</code>" in html
    with pytest.raises(ReportError, match="no timeline recorded"):
        write_report(results, results / "x.html", timeline_run="r000011")
    with pytest.raises(ReportError, match="no such run"):
        write_report(results, results / "x.html", timeline_run="r999")


def test_estimates_are_labelled(tmp_path: Path) -> None:
    records = epochs_study(12)
    for r in records:
        r.energy = energy_block(None, r.energy.total_j, method="estimated")
    results = store(tmp_path, records)
    html = write_report(results, tmp_path / "r.html").path.read_text()
    assert "ESTIMATED figures" in html  # the banner
    assert "<span class='badge m-estimated'>ESTIMATE</span>" in html
    assert "No timeline recorded" in html


def test_bad_target_metric_is_a_clear_error(tmp_path: Path) -> None:
    results = store(tmp_path, epochs_study(5))
    with pytest.raises(ReportError, match="expected METRIC>=VALUE"):
        write_report(results, tmp_path / "r.html", target_metric="accuracy is high")
    with pytest.raises(ReportError, match="no metric 'acc' recorded; metrics here: test_acc"):
        write_report(results, tmp_path / "r.html", target_metric="acc>=0.9")
    assert not (tmp_path / "r.html").exists()


def test_cli_report_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    results = store(tmp_path / "results", epochs_study(6))
    out = tmp_path / "out" / "report.html"
    assert cli(["report", "--results-dir", str(results), "-o", str(out)]) == 0
    assert f"wrote {out} (6 runs)" in capsys.readouterr().out
    assert out.stat().st_mode & 0o044  # readable by others, like any result file
    code = cli(["report", "--results-dir", str(results), "--study", "x", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no runs of study 'x'" in err
    code = cli(["report", "--results-dir", str(results), "--target-metric", "x>1", "-o", "r.html"])
    assert code == 2 and "no metric 'x' recorded" in capsys.readouterr().err


def test_worker_pool_draws_and_survives_a_dead_worker() -> None:
    kwargs = {
        "groups": ["a", "b"],
        "mean": _arr([1.0, 2.0]),
        "low": _arr([0.5, 1.5]),
        "high": _arr([1.5, 2.5]),
        "estimated": False,
        "unit": "J",
    }
    with FigurePool(2) as pool:
        first = pool.submit(draw_summary, **kwargs)
        assert first.startswith("hj-figure-")
        html = pool.fill(f"<img src='{first}'>")
        assert html.startswith("<img src='data:image/png;base64,")
        for worker in pool._workers:
            worker.proc.kill()
            worker.proc.wait()
        second = pool.submit(draw_summary, **kwargs)
        assert pool.fill(second).startswith("data:image/png;base64,")  # drawn here instead


def _arr(values: list[float]):  # type: ignore[no-untyped-def]
    import numpy as np

    return np.array(values)


def odd_study(kind: str) -> list:
    if kind == "all failed":
        return [record(i, hps={"epochs": i}, status=RunStatus.FAILED) for i in range(6)]
    if kind == "no metrics":
        return [record(i, hps={"epochs": i + 1}) for i in range(6)]
    if kind == "one run":
        return [record(0, hps={}, metrics={"acc": 0.5}, model=None)]
    if kind == "no energy":
        return [record(i, hps={"epochs": i + 1}, metrics={"acc": 0.5 + i / 100},
                       energy=energy_block(None)) for i in range(6)]  # fmt: skip
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["all failed", "no metrics", "one run", "no energy"])
def test_odd_studies_still_make_a_report(tmp_path: Path, kind: str) -> None:
    results = store(tmp_path, odd_study(kind))
    html = write_report(results, tmp_path / "r.html").path.read_text()
    assert "<section id='methods'>" in html
    for data in PNG.findall(html):
        assert base64.b64decode(data).startswith(b"\x89PNG")
    if kind == "no energy":
        assert "have no energy measurement at all" in html


def test_timeline_is_found_after_the_results_directory_moved(tmp_path: Path) -> None:
    # Records hold absolute run directories; a copied results tree must still report.
    study(tmp_path / "here" / "results")
    (tmp_path / "here").rename(tmp_path / "there")
    moved = tmp_path / "there" / "results"
    info = write_report(moved, moved / "report.html")
    assert info.timeline_run == "r000010"
    assert "GPU power, temperature and utilisation of run <code>r000010</code>" in (
        info.path.read_text()
    )
