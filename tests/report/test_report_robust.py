"""The report on awkward data: it never crashes, and a failure is one line and exit 1."""

from __future__ import annotations

import re
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
    from hyperjoule.report.render import _sections_study as _study_sections

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


def _spread_records() -> list[RunRecord]:
    """Perplexity near 0 and accuracy near 1 with a wide spread: naive t intervals overflow."""
    values = [(2.0, 0.999), (60.0, 0.30), (1.0, 1.0)]
    return [
        record(
            i,
            hps={"epochs": i + 1},
            metrics={"test_ppl": ppl, "test_accuracy": acc},
            energy=energy_block(e_j),
        )
        for i, ((ppl, acc), e_j) in enumerate(zip(values, (932.0, 20.0, 999.7), strict=True))
    ]


def test_intervals_stay_in_the_metric_domain(tmp_path: Path) -> None:
    from hyperjoule.report import group_summary, load_runs

    results = store(tmp_path / "results", _spread_records())
    summary = group_summary(load_runs(results)).iloc[0]
    assert summary["metric_test_ppl_low"] == 0.0 < summary["metric_test_ppl_high"]
    assert summary["metric_test_accuracy_high"] == 1.0
    assert summary["energy_total_j_low"] == 0.0
    code, html = _report(results, tmp_path)
    assert code == 0
    intervals = re.findall(r"<span class='ci'>\[([^\]]*)\]", html)
    assert intervals and not any(b.strip().startswith("-") for i in intervals for b in i.split(","))


def test_numbers_have_significant_digits_not_exponents(tmp_path: Path) -> None:
    results = store(tmp_path / "results", _spread_records())
    code, html = _report(results, tmp_path)
    assert code == 0
    text = re.sub(r"data:image/png;base64,[^']*", "", html)
    assert not re.search(r"\de[+-]\d", text)
    assert "932 J" in html and "1 kJ" in html


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (932.4, 3, "932"),
        (999.7, 3, "1,000"),
        (1000.0, 3, "1,000"),
        (0.012345, 3, "0.0123"),
        (0.5, 4, "0.5"),
        (0.99996, 3, "1"),
        (12345.6, 3, "12,346"),
        (-2.5e-7, 3, "-2.50e-07"),
        (float("nan"), 3, "–"),
        (0, 3, "0"),
    ],
)
def test_fmt_sig(value: float, digits: int, text: str) -> None:
    from hyperjoule.report._numbers import fmt_sig

    assert fmt_sig(value, digits) == text
