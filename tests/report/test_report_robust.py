"""The report on awkward data: it never crashes, and a failure is one line and exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_data import energy_block, record, store

from hyperjoule.cli import main
from hyperjoule.records import RunRecord


def _report(results: Path, tmp_path: Path, *extra: str) -> tuple[int, str]:
    out = tmp_path / "report.html"
    code = main(["report", "--results-dir", str(results), "-o", str(out), *extra])
    return code, out.read_text(encoding="utf-8") if out.exists() else ""


def _parallel_only_and_isolated_only() -> list[RunRecord]:
    par = [
        record(i, hps={"epochs": i + 1}, metrics={"acc": 0.5 + i / 100}, model="a", mode="parallel")
        for i in range(3)
    ]
    iso = [
        record(10 + i, hps={"epochs": i + 1}, metrics={"acc": 0.6 + i / 100}, model="b")
        for i in range(3)
    ]
    return par + iso


CASES = {
    "parallel-only and isolated-only models": _parallel_only_and_isolated_only,
    "a single run": lambda: [record(1, hps={"epochs": 1}, metrics={"acc": 0.5})],
    "no energy": lambda: [
        record(i, hps={"epochs": i}, metrics={"acc": 0.5 + i / 10}, energy=energy_block(None))
        for i in range(3)
    ],
    "no metrics": lambda: [record(i, hps={"epochs": i}) for i in range(3)],
    "neither energy nor metrics nor hyperparameters": lambda: [
        record(i, hps={}, energy=energy_block(None)) for i in range(2)
    ],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_report_is_written_for_awkward_data(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = store(tmp_path / "results", CASES[case]())
    code, html = _report(results, tmp_path)
    assert code == 0, capsys.readouterr().err
    assert "<html" in html
    assert "Traceback" not in capsys.readouterr().err


def test_parallel_only_and_isolated_only_says_why_nothing_is_compared(tmp_path: Path) -> None:
    results = store(tmp_path / "results", _parallel_only_and_isolated_only())
    code, html = _report(results, tmp_path)
    assert code == 0
    assert "no target/model has succeeded runs with energy both in parallel and isolated" in html


def test_unexpected_failure_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from hyperjoule.report import _study_sections

    def broken(*_args: object, **_kwargs: object) -> None:
        raise KeyError("isolated_energy_j")

    monkeypatch.setattr(_study_sections, "parallel_vs_isolated", broken)
    results = store(tmp_path / "results", _parallel_only_and_isolated_only())
    code, _html = _report(results, tmp_path)
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "report failed: KeyError" in err and "isolated_energy_j" in err
    assert "Traceback" not in err
    assert not (tmp_path / "report.html").exists()
    code = main(["--debug", "report", "--results-dir", str(results), "-o", str(tmp_path / "r")])
    assert code == 1
    assert "Traceback" in capsys.readouterr().err
