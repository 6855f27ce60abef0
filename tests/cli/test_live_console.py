"""The live console of ``hyperjoule run``: live lines on a terminal, event lines when piped,
the last log line with ``--tail``, an ETA from recorded durations."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import Project, target_block
from hyperjoule.cli import main
from hyperjoule.cli._live import LiveConsole, last_log_line

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _study(project: Project, sleep_s: float = 0.0, runs: int = 2) -> Path:
    block = target_block()
    block["args"] = [*block["args"], "--sleep", str(sleep_s)]  # type: ignore[misc]
    project.write_targets({"toy": block})
    return project.write_study(
        [
            {
                "target": "toy",
                "model": "small",
                "mode": "mutation",
                "mutate": ["epochs"],
                "runs": runs,
            }
        ]
    )


def _run(project: Project, study: Path, *extra: str) -> int:
    return main(["run", str(study), "--results-dir", str(project.results), *extra])


def test_piped_output_is_one_line_per_event(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _study(project)
    assert _run(project, study, "--tail") == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out  # nothing redrawn
    started = [line for line in out.splitlines() if line.startswith("started")]
    assert len(started) == 2
    # Slot, target/model and the mutated values on the line of each start.
    assert all(re.search(r"\[e0-\d+\] toy/small epochs=\d ", line) for line in started)
    finished = [line for line in out.splitlines() if line.startswith("succeeded")]
    assert len(finished) == 2
    # No earlier runs of this target: the ETA is unknown, then known from the first run.
    assert "ETA unknown" in started[0] and re.search(r"ETA \d", started[1])
    assert finished[1].endswith("· done")
    # --tail when piped: the last log line after each run.
    assert out.count("last log line: Test Accuracy:") == 2


def test_eta_comes_from_recorded_durations(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _study(project, runs=1)
    assert _run(project, study) == 0  # one recorded run of toy/small
    capsys.readouterr()
    more = project.write_study(
        [{"target": "toy", "model": "small", "mode": "mutation", "mutate": ["lr"], "runs": 2}],
        name="more",
    )
    assert _run(project, more) == 0
    started = [line for line in capsys.readouterr().out.splitlines() if "started" in line]
    assert re.search(r"ETA \d+(\.\d)?s$", started[0]), started[0]


def test_terminal_shows_runs_in_flight_with_elapsed_attempt_and_tail(
    project: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich draws as on a terminal
    monkeypatch.setenv("COLUMNS", "200")
    study = _study(project, sleep_s=1.5, runs=1)
    assert _run(project, study, "--tail") == 0
    out = ANSI.sub("", capsys.readouterr().out)
    # The live line: slot, target/model, mutated value, elapsed time, attempt, log tail.
    assert re.search(r"\[e0-\d+\] toy/small epochs=\d \d+\.\ds attempt 1 › model=small", out), out
    assert "s: 0/1 done, 1 running, ETA unknown" in out


def test_last_log_line(tmp_path: Path) -> None:
    log = tmp_path / "attempt-1.log"
    assert last_log_line(log) is None
    log.write_bytes(b"first\nepoch 1\rloss=0.5 \x1b[2J\n\n")
    assert last_log_line(log) == "loss=0.5 \\x1b[2J"  # escaped, never a terminal command
    log.write_bytes(b"x" * 20000 + b"\nlast")
    assert last_log_line(log) == "last"


def test_live_console_lines_fit_the_console(project: Project) -> None:
    """Lines in flight are cut with an ellipsis, never wrapped."""
    import io

    from rich.console import Console

    from hyperjoule.config import load_study
    from hyperjoule.execution import load_plan_state

    study = _study(project, runs=1)
    plan = load_plan_state(load_study(study), None, save=False)
    buffer = io.StringIO()
    live = LiveConsole(Console(file=buffer, width=40, force_terminal=True), live=False)
    live.study_started("s", "sess", plan)
    live.run_started(1, 1, plan.todo[0], "r" + "x" * 60)
    live.console.print(live)
    lines = ANSI.sub("", buffer.getvalue()).splitlines()
    assert all(len(line) <= 40 for line in lines)
    assert lines[-1].endswith("…")


def test_a_retry_is_an_event_with_its_attempt(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    project.write_targets({"toy": target_block("flaky")})
    study = project.write_study(
        [{"target": "toy", "model": "small"}],
        defaults={"max_retries": 1, "retry_on": ["failed"]},
    )
    assert _run(project, study) == 0
    out = capsys.readouterr().out
    assert re.search(r"^retrying +attempt 2 \[e0-\d+\] toy/small r\S+$", out, re.M), out
