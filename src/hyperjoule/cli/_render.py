"""Terminal rendering for the CLI: progress bar, plan, run and target tables."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from hyperjoule._text import safe_text
from hyperjoule.config import LoadedStudy, Target
from hyperjoule.execution import PlanState, SearchProgress, StudyResult
from hyperjoule.records import RunRecord, RunStatus
from hyperjoule.report._numbers import fmt_sig

__all__ = [
    "format_duration",
    "guessed_goals",
    "print_plan",
    "print_study_result",
    "print_targets",
    "run_line",
    "shown",
    "spending_line",
]

_STATUS_STYLE = {
    RunStatus.SUCCEEDED: "green",
    RunStatus.INTERRUPTED: "yellow",
    RunStatus.PRUNED: "magenta",
    RunStatus.RUNNING: "cyan",
}


def _console() -> Console:
    # Piped output (logs, `make demo` in CI) gets wide lines instead of folded cells.
    width = None if sys.stdout.isatty() else 160
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=width)


def format_duration(seconds: float | None) -> str:
    """Format seconds as ``1h02m``, ``3m05s`` or ``4.2s``."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _energy(record: RunRecord) -> str:
    total = record.energy.total_j
    if total is None:
        return "unavailable"
    return f"{total:,.1f} J ({record.energy.total_method})"


def _retried(record: RunRecord) -> str:
    """``, all 2 attempts 61.0 J`` after the last attempt's energy, when it was retried."""
    if record.attempts < 2:
        return ""
    spent = record.attempts_energy
    if spent.total_j is None:
        return f", all {record.attempts} attempts unmeasured"
    missing = f" ({spent.unmeasured} unmeasured)" if spent.unmeasured else ""
    return f", all {record.attempts} attempts {spent.total_j:,.1f} J{missing}"


def carbon_text(record: RunRecord) -> str:
    """`` ≈ 1.2 g CO2e (estimate)`` when the study asked for a carbon figure."""
    carbon = record.carbon
    if carbon is None:
        return ""
    if carbon.co2e_g is None:
        return " CO2e unavailable (no energy figure)"
    return f" ≈ {fmt_sig(carbon.co2e_g)} g CO2e (estimate)"


def shown(text: object, max_chars: int | None = None) -> str:
    """Untrusted text as rich markup: control characters escaped, brackets literal."""
    return escape(safe_text(text, max_chars))


def _label(target: str, model: str | None) -> str:
    return shown(target if model is None else f"{target}/{model}")


def _metrics(metrics: dict[str, float], limit: int = 3) -> str:
    return " ".join(f"{shown(k, 40)}={v:.4g}" for k, v in list(metrics.items())[:limit])


def run_line(index: int, total: int, record: RunRecord) -> str:
    """The permanent line of a recorded run (rich markup): status, energy, CO₂e, metrics."""
    style = _STATUS_STYLE.get(record.status, "red")
    reason = (
        f" — {shown(record.error, 300)}"
        if record.error and record.status != RunStatus.SUCCEEDED
        else ""
    )
    return (
        f"[{style}]{record.status.value:<15}[/] {index}/{total} "
        f"{_label(record.target, record.model)} {record.run_id} "
        f"{format_duration(record.duration_s)} {_energy(record)}{_retried(record)}"
        f"{carbon_text(record)} "
        f"{_metrics(record.metrics)}{reason}"
    )


def print_study_result(result: StudyResult, results_dir: Path) -> None:
    """Print the end-of-study summary."""
    console = _console()
    counts = Counter(r.status.value for r in result.records)
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing to run"
    if not result.session:
        for line in result.changes:
            console.print(f"[yellow]changed[/]: {line}", soft_wrap=True)
        console.print(
            f"study {result.study}: all {result.planned} planned runs are finished; nothing to run"
        )
        return
    console.print(f"study {result.study}: {parts}; session {result.session}")
    console.print(f"results: {results_dir / result.study / result.session}")
    if result.records:
        console.print(spending_line(result.records))
    if result.interrupted:
        console.print("[yellow]interrupted[/]: run the same command again to resume")


def spending_line(records: list[RunRecord]) -> str:
    """What the runs spent in all their attempts, and how much went into failed ones."""
    total_j = failed_j = 0.0
    methods: set[str] = set()
    attempts = failed = unmeasured = 0
    for record in records:
        spent = record.attempts_energy
        unmeasured += spent.unmeasured
        entries = record.attempt_entries
        attempts += max(record.attempts, len(entries))
        for entry in entries:
            energy_j = entry.energy_total_j
            lost = entry.status != RunStatus.SUCCEEDED.value
            failed += lost
            if energy_j is not None:
                total_j += energy_j
                failed_j += energy_j if lost else 0.0
                methods.add(entry.energy_method)
    if not methods:
        return f"energy spent by this session: unavailable ({attempts} attempt(s), none measured)"
    missing = f"; {unmeasured} attempt(s) without a figure" if unmeasured else ""
    grams = [r.carbon.attempts_co2e_g for r in records if r.carbon is not None]
    known = [g for g in grams if g is not None]
    carbon = f"; ≈ {fmt_sig(sum(known))} g CO2e (estimate)" if known else ""
    return (
        f"energy spent by this session: {total_j:,.1f} J in {attempts} attempt(s) "
        f"({', '.join(sorted(methods))}), {failed_j:,.1f} J of it in {failed} that did not "
        f"succeed{missing}{carbon}"
    )


def _goal_text(target: Target, metric: str) -> str:
    """``minimize``, or ``maximize, guessed`` when the target declares no goal for it."""
    from hyperjoule.report.load._goals import guess_maximize

    spec = target.metrics.get(metric)
    if spec is not None and spec.goal is not None:
        return spec.goal
    return ("maximize" if guess_maximize(metric) else "minimize") + ", guessed"


def guessed_goals(loaded: LoadedStudy, targets: list[str]) -> list[str]:
    """``name (minimize)`` for each metric of ``targets`` without a declared goal, once."""
    from hyperjoule.report.load._goals import guess_maximize

    out: dict[str, str] = {}
    for name in targets:
        target = loaded.targets[name]
        for metric in [*target.metrics, *target.required_metrics]:
            spec = target.metrics.get(metric)
            if (spec is None or spec.goal is None) and metric not in out:
                out[metric] = "maximize" if guess_maximize(metric) else "minimize"
    return [f"{m} ({g})" for m, g in out.items()]


def print_plan(loaded: LoadedStudy, state: PlanState) -> None:
    """Print every planned run, the counts and the time estimate."""
    console = _console()
    table = Table(title=f"plan of study {loaded.name}", show_lines=False)
    for col in ("slot", "state", "mode", "target/model", "mutated", "differs from defaults"):
        table.add_column(col, overflow="fold")
    for spec in state.specs:
        # Every run carries every hyperparameter; only those off their default are news.
        declared = loaded.targets[spec.target].hyperparameters
        params = " ".join(
            f"{k}={v}" for k, v in spec.hyperparameters.items() if v != declared[k].default
        )
        params = params or "(all defaults)"
        if spec.background:
            loads = ", ".join(_label(b.target, b.model) for b in spec.background)
            params += f"  | background: {loads}"
        table.add_row(
            spec.slot_id,
            "done"
            if spec.slot_id in state.done
            else "rerun"
            if spec.slot_id in state.rerun_of
            else "to run",
            spec.mode,
            _label(spec.target, spec.model),
            ",".join(spec.mutated) or "-",
            params,
        )
    if state.specs or not state.searches:
        console.print(table)
        console.print(
            f"{len(state.specs)} planned runs: {len(state.done)} done, {len(state.todo)} to run"
            + (f" ({len(state.rerun_of)} of them again, --rerun)" if state.rerun_of else "")
        )
    guessed = guessed_goals(loaded, sorted({s.target for s in state.specs}))
    if guessed:
        console.print(
            "metric goals guessed from the name (declare 'goal: minimize' or 'goal: maximize' "
            "under the target's metrics): " + ", ".join(guessed)
        )
    for line in state.changes:
        console.print(f"[yellow]changed[/]: {line}", soft_wrap=True)
    for progress in state.searches:
        _print_search(console, progress)
    if not state.runs_left:
        console.print("estimated time: nothing left to run")
    elif state.estimate_s is not None:
        console.print(
            f"estimated time: {format_duration(state.estimate_s)} (median duration of earlier "
            "runs of the same targets)"
        )
    else:
        console.print(
            "estimated time: unknown — no earlier runs of " + ", ".join(state.unestimated)
        )


def _print_search(console: Console, progress: SearchProgress) -> None:
    """A search experiment in ``plan``: space, objectives, constraints, sampler, budget."""
    setup = progress.setup
    exp = setup.experiment
    table = Table(
        title=f"search experiments.{setup.index}: {_label(setup.target, setup.model)}",
        show_header=True,
    )
    table.add_column("searched", overflow="fold")
    table.add_column("space", overflow="fold")
    for name, text in setup.space.describe().items():
        table.add_row(name, text)
    console.print(table)
    objectives = ", ".join(f"{o.name} ({o.direction})" for o in setup.objectives)
    console.print(f"  objectives: {objectives}")
    if exp.constraints:
        console.print(
            "  constraints: " + ", ".join(f"{k} {v.strip()}" for k, v in exp.constraints.items())
        )
    prune = exp.prune
    console.print(
        f"  sampler: {exp.sampler}; trials: {exp.trials} ({progress.done} done, "
        f"{progress.left} to run)"
        + ("; warm start from recorded runs" if exp.warm_start else "")
        + (
            f"; pruning: {prune.pruner} on {prune.metric} from {prune.step} {prune.min_epochs}"
            if prune is not None
            else ""
        )
    )


def print_targets(targets: dict[str, Target]) -> None:
    """Print targets, their models and hyperparameters."""
    console = _console()
    for name, target in targets.items():
        console.print(f"[bold]{name}[/]  workdir {target.workdir}")
        console.print(f"  command: {' '.join(target.command + target.args)}")
        if target.models:
            console.print(f"  models ({target.model_flag}): {', '.join(target.models)}")
        table = Table(show_lines=False, pad_edge=False)
        for col in ("hyperparameter", "flag", "type", "default", "space", "distribution"):
            table.add_column(col)
        for hp_name, hp in target.hyperparameters.items():
            space: Any = hp.choices if hp.choices is not None else hp.range
            dist: str = hp.distribution if hp.range is not None else "choice" if hp.choices else "-"
            if hp.zero_probability:
                dist += f", P(0)={hp.zero_probability:g}"
            table.add_row(
                hp_name,
                hp.flag or "(system knob)",
                hp.type,
                str(hp.default),
                str(space or "-"),
                dist,
            )
        console.print(table)
        metrics = sorted(set(target.metrics) | set(target.required_metrics))
        required = ", ".join(target.required_metrics) or "none"
        shown = [f"{m} ({_goal_text(target, m)})" for m in metrics]
        console.print(f"  metrics: {', '.join(shown) or '-'} (required: {required})")
