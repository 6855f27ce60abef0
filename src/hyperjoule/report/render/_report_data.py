"""What every report section reads (:class:`ReportData`) and the table cells they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperjoule.report._pool import FigurePool
from hyperjoule.report.analysis._target import TargetMetric
from hyperjoule.report.load._goals import MetricGoal, MetricGoals
from hyperjoule.report.render._html import badge, esc

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ReportData",
    "method_badges",
    "note_cell",
    "raw_cell",
    "run_id_cell",
    "text_cell",
]


@dataclass
class ReportData:
    """What every section reads.

    Attributes:
        runs: The flat run table plus a ``group`` (target/model) column.
        attempts: One row per attempt.
        results_dir: The results directory.
        title: What the report covers (a study name, or every study).
        metrics: The ``metric_*`` columns analysed.
        target: The energy-to-target threshold, None without any metric.
        pool: Where figures are drawn (inline, or worker processes for big reports).
        goals: The metric goals the targets declared (the others are guessed).
    """

    runs: pd.DataFrame
    attempts: pd.DataFrame
    results_dir: Path
    title: str
    metrics: list[str]
    target: TargetMetric | None
    pool: FigurePool = field(default_factory=FigurePool)
    goals: MetricGoals = field(default_factory=MetricGoals)

    def goal(self, metric: str, runs: pd.DataFrame | None = None) -> MetricGoal:
        """The goal of ``metric`` for ``runs`` (one target's) or for the whole report."""
        targets = [] if runs is None else runs["target"].dropna().unique().tolist()
        return self.goals.of(metric, str(targets[0]) if len(targets) == 1 else None)

    def estimated(self, runs: pd.DataFrame | None = None) -> bool:
        """Whether any total energy among ``runs`` (default: all) is an estimate."""
        data = self.runs if runs is None else runs
        return bool((data["energy_total_method"] == "estimated").any())

    def groups(self) -> list[tuple[str, pd.DataFrame]]:
        """(target/model, its runs) in name order."""
        return [(str(g), part) for g, part in self.runs.groupby("group", sort=True)]


def method_badges(mix: Any) -> str:
    """Badges for a method mix string (``counter`` or ``counter 90%, estimated 10%``)."""
    if not isinstance(mix, str) or not mix:
        return badge("unavailable")
    out = []
    for part in mix.split(", "):
        name, _, share = part.partition(" ")
        out.append(badge(name) + (f" <span class='muted'>{esc(share)}</span>" if share else ""))
    return " ".join(out)


def raw_cell(value: Any) -> str:
    """A table cell shown as is (already HTML)."""
    return str(value)


def text_cell(value: Any) -> str:
    """A table cell of plain text, escaped."""
    return esc(value)


def note_cell(value: Any) -> str:
    """A table cell of text that may be missing (empty then)."""
    return "" if value is None or value != value else esc(value)


def run_id_cell(value: Any) -> str:
    """A run id that never wraps (ids are long and break badly)."""
    return f"<span class='id'>{esc(value)}</span>"
