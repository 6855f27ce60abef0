"""Which direction of each metric is better: declared in ``targets.yaml``, else guessed.

Every record carries the goals its target declared (``metric_goals``), so an analysis of
a results directory needs nothing else. A metric nobody declared is guessed from its name
(:func:`guess_maximize`) and every place that shows it says the goal was guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LOWER_IS_BETTER_WORDS", "MetricGoal", "MetricGoals", "guess_maximize"]

LOWER_IS_BETTER_WORDS = (
    "loss",
    "error",
    "err",
    "perplexity",
    "ppl",
    "mse",
    "mae",
    "rmse",
    "time",
    "wer",
    "cer",
)
"""Undeclared metrics whose name contains one of these words are guessed lower-is-better."""

_GOALS = ("minimize", "maximize")


def _bare(metric: str) -> str:
    return metric.removeprefix("metric_")


def guess_maximize(name: str) -> bool:
    """Guess from a metric's name whether higher is better (accuracy, mAP, rank-1, ...)."""
    words = _bare(name).lower().replace("-", "_").split("_")
    return not any(w in LOWER_IS_BETTER_WORDS for w in words)


@dataclass(frozen=True)
class MetricGoal:
    """The goal of one metric as an analysis uses it.

    Attributes:
        metric: The metric's name (without ``metric_``).
        maximize: Whether a higher value is better.
        declared: True when a target declared it; False when guessed from the name.
    """

    metric: str
    maximize: bool
    declared: bool

    @property
    def goal(self) -> str:
        """``maximize`` or ``minimize``."""
        return "maximize" if self.maximize else "minimize"

    @property
    def label(self) -> str:
        """``minimize``, or ``minimize (guessed from the name)`` when not declared."""
        return self.goal if self.declared else f"{self.goal} (guessed from the name)"

    @property
    def arrow(self) -> str:
        """``↑`` (higher is better) or ``↓``, with ``?`` when guessed."""
        return ("↑" if self.maximize else "↓") + ("" if self.declared else "?")


@dataclass
class MetricGoals:
    """Declared goals per (target, metric), read from the records.

    Attributes:
        declared: ``(target, metric) -> "minimize" | "maximize"``; the newest record wins
            when a target changed its declaration.
    """

    declared: dict[tuple[str, str], str] = field(default_factory=dict)

    @classmethod
    def from_records(cls, targets: Iterable[Any], goal_maps: Iterable[Any]) -> MetricGoals:
        """Collect the ``metric_goals`` of records (oldest first), ignoring malformed ones."""
        declared: dict[tuple[str, str], str] = {}
        for target, goals in zip(targets, goal_maps, strict=True):
            if not isinstance(goals, Mapping):
                continue
            for metric, goal in goals.items():
                if goal in _GOALS:
                    declared[(str(target), str(metric))] = goal
        return cls(declared)

    def merged(self, other: MetricGoals) -> MetricGoals:
        """These goals updated by ``other``'s."""
        return MetricGoals({**self.declared, **other.declared})

    def of(self, metric: str, target: str | None = None) -> MetricGoal:
        """The goal of ``metric`` (``metric_`` prefix optional) for ``target``.

        Without a target (or when that target declared nothing for it), a goal every
        declaring target agrees on counts as declared; otherwise it is guessed.
        """
        name = _bare(metric)
        if target is not None and (target, name) in self.declared:
            return MetricGoal(name, self.declared[(target, name)] == "maximize", declared=True)
        goals = {g for (_t, m), g in self.declared.items() if m == name}
        if len(goals) == 1:
            return MetricGoal(name, goals.pop() == "maximize", declared=True)
        return MetricGoal(name, guess_maximize(name), declared=False)

    def guessed(self, metrics: Iterable[str]) -> list[str]:
        """Those of ``metrics`` (bare names) whose goal is guessed, in order, once each."""
        out: list[str] = []
        for metric in metrics:
            name = _bare(metric)
            if name not in out and not self.of(name).declared:
                out.append(name)
        return out
