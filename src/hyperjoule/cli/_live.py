"""The live console of ``hyperjoule run``: what runs now, for how long, and when it ends.

On a terminal, one line per run in flight is redrawn twice a second: its plan slot,
target/model, the mutated values, elapsed time, attempt and (with ``--tail``) the last
line of its log; above them the study's progress and ETA. Finished runs are printed as
permanent lines. Piped output (logs, CI) gets one plain line per event instead, never a
redraw.

The ETA comes from recorded durations: the median of earlier succeeded runs of each
target/model (from the database, see ``PlanState.median_s``), updated with the runs of
this session as they finish, divided over the runs in flight at once.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from hyperjoule._text import safe_text
from hyperjoule.cli._render import format_duration, run_line, shown
from hyperjoule.execution import PlanState
from hyperjoule.records import RunRecord, RunSpec
from hyperjoule.report._numbers import fmt_sig

__all__ = ["LiveConsole", "last_log_line"]

_TAIL_BYTES = 8192
"""How much of the end of a log is read for its last line."""
_REFRESH_PER_S = 2


def last_log_line(path: Path, max_chars: int = 200) -> str | None:
    """The last non-empty line of a log (read from its end only), as safe text.

    A carriage return ends a line too (progress bars redraw with it). None when the file
    is missing, empty or not a regular file.
    """
    try:
        if not path.is_file():
            return None
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - _TAIL_BYTES, 0))
            data = f.read(_TAIL_BYTES)
    except OSError:
        return None
    lines = data.decode("utf-8", errors="replace").replace("\r", "\n").split("\n")
    for line in reversed(lines):
        if line.strip():
            return safe_text(line.strip(), max_chars)
    return None


def _values(spec: RunSpec) -> str:
    """``epochs=7 lr=0.012``: the mutated hyperparameters, or ``defaults``."""
    parts = []
    for name in spec.mutated:
        value = spec.hyperparameters.get(name)
        text = fmt_sig(value, 4, grouping=False) if isinstance(value, float) else str(value)
        parts.append(f"{name}={text}")
    return safe_text(" ".join(parts) or "defaults", 200)


def _label(spec: RunSpec) -> str:
    return safe_text(spec.target if spec.model is None else f"{spec.target}/{spec.model}", 80)


@dataclass
class _Flight:
    index: int
    spec: RunSpec
    run_id: str
    started: float  # time.monotonic() of the run's start
    attempt: int = 1
    log: Path | None = None


@dataclass
class _Durations:
    """Median durations per (target, model): recorded ones, then this session's too."""

    recorded: dict[tuple[str, str | None], float] = field(default_factory=dict)
    session: dict[tuple[str, str | None], list[float]] = field(default_factory=dict)

    def add(self, record: RunRecord) -> None:
        if record.duration_s is not None and record.status.value == "succeeded":
            self.session.setdefault((record.target, record.model), []).append(record.duration_s)

    def median(self, key: tuple[str, str | None]) -> float | None:
        mine = self.session.get(key)
        if mine:
            return statistics.median(mine)
        return self.recorded.get(key)


class LiveConsole:
    """The ``run`` command's observer: live lines on a terminal, event lines when piped.

    Args:
        console: Where to draw (default: standard output).
        tail: Show the last log line of each run in flight.
        live: Redraw lines in place; default: when the console is a terminal.
    """

    def __init__(
        self, console: Console | None = None, *, tail: bool = False, live: bool | None = None
    ) -> None:
        piped_width = None if sys.stdout.isatty() else 160
        self.console = console or Console(
            file=sys.stdout, highlight=False, soft_wrap=False, width=piped_width
        )
        self.tail = tail
        self.live = self.console.is_terminal if live is None else live
        self._flights: dict[str, _Flight] = {}
        self._durations = _Durations()
        self._todo: list[RunSpec] = []
        self._trials: list[tuple[tuple[str, str | None], int, float]] = []
        self._started = 0
        self._finished = 0
        self._total = 0
        self._parallel = 1
        self._study = ""
        self._display: Live | None = None

    # Context: the live area exists between enter and exit -------------------------------

    def __enter__(self) -> LiveConsole:
        if self.live:
            self._display = Live(
                self,
                console=self.console,
                refresh_per_second=_REFRESH_PER_S,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._display.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._display is not None:
            self._display.stop()
            self._display = None

    # Events ------------------------------------------------------------------------------

    def study_started(self, study: str, session: str, plan: PlanState) -> None:
        """Print what will run; remember what is left for the ETA."""
        self._study = study
        self._todo = list(plan.todo)
        # Search trials are proposed later; each costs like a run of its target/model.
        self._trials = [
            (
                (p.setup.target, p.setup.model),
                p.left,
                p.setup.spec(0, dict(p.setup.space.base), -1).cooldown_s,
            )
            for p in plan.searches
            if p.left
        ]
        self._durations.recorded = dict(plan.median_s)
        self._total = plan.runs_left
        trials = sum(s.left for s in plan.searches)
        self.console.print(
            f"study [bold]{escape(study)}[/]: {len(plan.specs)} planned, "
            f"{len(plan.done)} already done, {len(plan.todo)} to run"
            + (f", {trials} search trial(s) to run" if trials else "")
            + f" (session {session})"
            + (f", {len(plan.rerun_of)} of them again (--rerun)" if plan.rerun_of else "")
        )
        for line in plan.changes:
            self.console.print(f"[yellow]changed[/]: {shown(line)}", soft_wrap=True)

    def search_progress(self, line: str) -> None:
        """Print the best trade-off a search found so far."""
        self.console.print(f"[magenta]{shown(line)}[/]")

    def run_started(self, index: int, total: int, spec: RunSpec, run_id: str) -> None:
        """A run's first attempt starts: a live line, or one printed line when piped."""
        self._started += 1
        self._total = max(self._total, total)
        # The refresh thread reads these while events arrive: replaced, never mutated.
        self._flights = {**self._flights, run_id: _Flight(index, spec, run_id, time.monotonic())}
        self._parallel = max(self._parallel, len(self._flights))
        if spec in self._todo:
            todo = list(self._todo)
            todo.remove(spec)
            self._todo = todo
        elif self._trials:
            key = (spec.target, spec.model)
            self._trials = [
                (k, n - 1 if k == key else n, c) for k, n, c in self._trials if n > (k == key)
            ]
        if not self.live:
            self.console.print(
                escape(
                    f"{'started':<15} {index}/{total} [{spec.slot_id}] {_label(spec)} "
                    f"{_values(spec)} {run_id} · {self.eta_text()}"
                )
            )

    def attempt_started(self, run_id: str, attempt: int, log: Path | None) -> None:
        """An attempt (the first, or a retry) starts writing ``log``."""
        flight = self._flights.get(run_id)
        if flight is None:
            return
        flight.attempt, flight.log = attempt, log
        if attempt > 1 and not self.live:
            self.console.print(
                escape(
                    f"{'retrying':<15} attempt {attempt} [{flight.spec.slot_id}] "
                    f"{_label(flight.spec)} {run_id}"
                )
            )

    def run_finished(self, index: int, total: int, record: RunRecord) -> None:
        """Print the run's permanent line (with the ETA), drop its live line."""
        flights = dict(self._flights)
        flight = flights.pop(record.run_id, None)
        self._flights = flights
        self._finished += 1
        self._durations.add(record)
        eta = self.eta_text()
        self.console.print(run_line(index, total, record) + f" · {escape(eta)}")
        if self.tail and not self.live and flight is not None and flight.log is not None:
            line = last_log_line(flight.log)
            if line:
                self.console.print(f"{'':<15} last log line: {escape(line)}")

    # ETA and drawing ---------------------------------------------------------------------

    def eta_s(self) -> float | None:
        """Seconds until the study ends, from recorded durations; None when unknown."""
        now = time.monotonic()
        work_s = 0.0
        flights, todo, trials = self._flights, self._todo, self._trials
        for flight in flights.values():
            median = self._durations.median((flight.spec.target, flight.spec.model))
            if median is None:
                return None
            work_s += max(median - (now - flight.started), 0.0)
        for spec in todo:
            median = self._durations.median((spec.target, spec.model))
            if median is None:
                return None
            work_s += median + spec.cooldown_s
        for key, left, cooldown_s in trials:
            median = self._durations.median(key)
            if median is None:
                return None
            work_s += left * (median + cooldown_s)
        return work_s / self._parallel

    def eta_text(self) -> str:
        """``ETA 12m05s``, ``done`` or why there is none yet."""
        if not self._flights and not self._todo and not any(n for _, n, _ in self._trials):
            return "done"
        eta = self.eta_s()
        if eta is None:
            return "ETA unknown until a run of each target finishes"
        return f"ETA {format_duration(eta)}"

    def __rich__(self) -> Group:
        """The live area: the study line, then one line per run in flight."""
        now = time.monotonic()
        eta = self.eta_text()
        basis = " (from recorded durations)" if eta[:5] == "ETA " and eta[4].isdigit() else ""
        head = Text(
            f"{self._study}: {self._finished}/{self._total} done, {len(self._flights)} running, "
            f"{eta}{basis}",
            style="bold",
            no_wrap=True,
            overflow="ellipsis",
        )
        lines: list[Text] = [head]
        for flight in sorted(self._flights.values(), key=lambda f: f.index):  # a snapshot
            spec = flight.spec
            retries = f"/{spec.max_retries + 1}" if spec.max_retries else ""
            text = Text(no_wrap=True, overflow="ellipsis")
            text.append(f"  [{spec.slot_id}] ", style="cyan")
            text.append(f"{_label(spec)} {_values(spec)} ")
            text.append(format_duration(now - flight.started), style="bold")
            text.append(f" attempt {flight.attempt}{retries}")
            if self.tail and flight.log is not None:
                line = last_log_line(flight.log)
                if line:
                    text.append(f" › {line}", style="dim")
            lines.append(text)
        return Group(*lines)
