"""Hostile target output is data, never control: real targets print what they like."""

from __future__ import annotations

import csv
import io
import textwrap
from pathlib import Path

import pytest

from conftest import Project, target_block
from hyperjoule.cli import main
from hyperjoule.metrics._bounds import MAX_METRICS, MAX_PROBLEMS
from hyperjoule.records import RunRecord, RunStatus
from hyperjoule.storage import ResultsStore, SummaryCsv

# Each case prints the required metric (so the run succeeds) plus something hostile.
HOSTILE_SCRIPT = textwrap.dedent(
    r"""
    import argparse, json, os, sys
    p = argparse.ArgumentParser()
    p.add_argument("--behaviour")
    a, _ = p.parse_known_args()
    case = a.behaviour
    mfile = os.environ["HYPERJOULE_METRICS_FILE"]
    out = sys.stdout
    def line(text):
        out.write("HYPERJOULE_METRICS " + text + "\n")
    if case == "surrogate":
        line('{"\\ud800": 1, "good": 2}')
        with open(mfile, "w") as f:
            f.write('{"\\udfff": 3, "from_file": 4}')
    elif case == "escape":
        line('{"\\u001b]0;pwned\\u0007title": 1, "\\u001b[2J": 2, "ok": 3}')
        line('{"<script>alert(1)</script>": 4, "[bold red]markup[/]": 5}')
    elif case == "digits":
        line('{"a": ' + "9" * 5000 + "}")
        line('{"b": ' + "9" * 400 + "}")
        line('{"c": 1e400, "d": NaN, "e": "Infinity"}')
        with open(mfile, "w") as f:
            f.write('{"f": ' + "1" * 5000 + "}")
    elif case == "deep":
        line("[" * 100000 + "]" * 100000)
        line('{"x": ' + "[" * 100000 + "]" * 100000 + "}")
        with open(mfile, "w") as f:
            f.write('{"y": ' + "{" * 100000 + "}" * 100000 + "}")
    elif case == "fifo":
        os.mkfifo(mfile)
    elif case == "devzero":
        os.symlink("/dev/zero", mfile)
    elif case in ("log_fifo", "log_devzero"):
        log = os.path.join(os.environ["HYPERJOULE_RUN_DIR"], "attempt-1.log")
        os.unlink(log)  # our stdout still writes to the unlinked file
        os.mkfifo(log) if case == "log_fifo" else os.symlink("/dev/zero", log)
        with open(mfile, "w") as f:
            f.write('{"test_accuracy": 91.5}')
    elif case == "many_bad":
        for i in range(100000):
            line('{"bad": "x%d"}' % i)
    elif case == "many_names":
        line(json.dumps({"m%d" % i: i for i in range(5000)}))
    elif case == "progress":
        chunk = "".join("\r%d%%|####| step %d" % (i % 100, i) for i in range(1000))
        for _ in range(200):
            out.write(chunk)
        out.write("\n" + "y" * (3 * 1024 * 1024) + "\n")
        line('{"after_progress": 5}')
    out.write("Test Accuracy: 91.5%\n")
    out.flush()
    """
)

CASES = [
    "surrogate",
    "escape",
    "digits",
    "deep",
    "fifo",
    "devzero",
    "log_fifo",
    "log_devzero",
    "many_bad",
    "many_names",
    "progress",
]


@pytest.fixture(scope="module")
def hostile_results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, int]:
    project = Project(tmp_path_factory.mktemp("hostile"))
    (project.root / "code" / "hostile.py").write_text(HOSTILE_SCRIPT)
    project.write_targets(
        {
            f"t_{case}": target_block(case, command=["{python}", "hostile.py"], timeout_s=30)
            for case in CASES
        }
    )
    study = project.write_study(
        [{"target": f"t_{case}", "model": "small", "mode": "default"} for case in CASES]
    )
    code = main(["run", str(study), "--results-dir", str(project.results)])
    return project, code


def _by_target(project: Project) -> dict[str, RunRecord]:
    with ResultsStore(project.results, create=False) as store:
        return {r.target.removeprefix("t_"): r for r in store.iter_runs()}


def _problems(record: RunRecord) -> list[str]:
    return list(record.attempt_log[-1]["metrics_problems"])


def test_every_hostile_run_succeeds_and_is_recorded(hostile_results: tuple[Project, int]) -> None:
    project, code = hostile_results
    assert code == 0
    records = _by_target(project)
    assert set(records) == set(CASES)
    for case, record in records.items():
        assert record.status is RunStatus.SUCCEEDED, (case, record.error)
        assert record.metrics["test_accuracy"] == pytest.approx(91.5)
        for name in record.metrics:
            assert name.isprintable() and len(name) <= 128
        run_json = Path(record.run_dir or "") / "run.json"
        assert run_json.stat().st_size < 200_000, case


def test_bad_names_and_numbers_are_problems(hostile_results: tuple[Project, int]) -> None:
    records = _by_target(hostile_results[0])
    surrogate = records["surrogate"]
    assert surrogate.metrics["good"] == 2 and surrogate.metrics["from_file"] == 4
    assert sum("unprintable" in p for p in _problems(surrogate)) == 2
    escape = records["escape"]
    assert set(escape.metrics) == {
        "ok",
        "test_accuracy",
        "<script>alert(1)</script>",
        "[bold red]markup[/]",
    }
    assert all("\x1b" not in p for p in _problems(escape))
    digits = records["digits"]
    assert not {"a", "b", "c", "d", "e", "f"} & set(digits.metrics)
    assert len(_problems(digits)) == 6
    deep = records["deep"]
    # Refused by depth before any recursive parser sees them.
    assert sum("too long" in p or "nested deeper" in p for p in _problems(deep)) == 2


def test_metrics_file_is_read_only_when_regular(hostile_results: tuple[Project, int]) -> None:
    records = _by_target(hostile_results[0])
    for case in ("fifo", "devzero", "log_fifo", "log_devzero"):
        assert any("not a regular file" in p for p in _problems(records[case])), case


def test_problems_and_names_are_capped(hostile_results: tuple[Project, int]) -> None:
    records = _by_target(hostile_results[0])
    problems = _problems(records["many_bad"])
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1].startswith(f"... and {100000 - MAX_PROBLEMS} more")
    many = records["many_names"]
    assert len(many.metrics) == MAX_METRICS
    assert any(f"more than {MAX_METRICS} metric names" in p for p in _problems(many))
    assert records["progress"].metrics["after_progress"] == 5


def test_reports_and_exports_read_the_hostile_results(
    hostile_results: tuple[Project, int],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project, _ = hostile_results
    results = str(project.results)
    assert main(["runs", "--results-dir", results, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(CASES) + 1
    assert main(["runs", "--results-dir", results]) == 0
    assert "\x1b" not in capsys.readouterr().out
    assert (
        main(["export", "--results-dir", results, "--format", "csv", "-o", str(tmp_path / "x.csv")])
        == 0
    )
    assert main(["report", "--results-dir", results, "-o", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html and "\x1b" not in html
    # 200 names of one run are kept, but the report analyses only the first few.
    assert "more recorded metric(s) are not analysed" in html
    for summary in project.results.glob("s/*/summary.csv"):
        summary.read_text(encoding="utf-8")  # valid UTF-8 all the way
    (tmp_path / "x.csv").read_text(encoding="utf-8")


def test_results_recorded_before_the_checks_still_read(
    project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Defence in depth: a database already holding hostile names never crashes readers."""
    study = project.write_study([{"target": "toy", "model": "small", "mode": "default"}])
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    with ResultsStore(project.results, create=False) as store:
        record = next(iter(store.iter_runs()))
        record.metrics.update({"\ud800": 1.0, "\x1b]0;pwned\x07": 2.0, "a\nb": 3.0})
        record.error = "\x1b[2Jcleared \udfff"
        store.update_run(record)
        summary = SummaryCsv(next(project.results.glob("s/*/summary.csv")))
        summary.append(record)
    results = str(project.results)
    assert main(["runs", "--results-dir", results, "--format", "csv"]) == 0
    assert main(["runs", "--results-dir", results]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\ud800" not in out
    for fmt in ("csv", "jsonl"):
        target = tmp_path / f"x.{fmt}"
        assert main(["export", "--results-dir", results, "--format", fmt, "-o", str(target)]) == 0
        target.read_text(encoding="utf-8")
    assert main(["report", "--results-dir", results, "-o", str(tmp_path / "r.html")]) == 0
    assert "\x1b" not in (tmp_path / "r.html").read_text(encoding="utf-8")
    for fmt in ("table", "csv", "json"):
        assert main(["pareto", "--results-dir", results, "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out, fmt
        out.encode("utf-8")


def test_run_files_get_the_mode_of_logs(hostile_results: tuple[Project, int]) -> None:
    project, _ = hostile_results
    for case, record in _by_target(project).items():
        if case.startswith("log_"):
            continue  # the target replaced its log
        run_dir = Path(record.run_dir or "")
        log_mode = (run_dir / "attempt-1.log").stat().st_mode & 0o777
        assert (run_dir / "run.json").stat().st_mode & 0o777 == log_mode
        assert (run_dir.parent / "summary.csv").stat().st_mode & 0o777 == log_mode
