"""A run's GPU timeline: ``<run_dir>/energy/gpu.csv`` written by the GPU meter.

Columns used: ``time_s``, ``gpu``, ``power_w``, ``temp_c``, ``util_pct`` (others are
kept). A run without the file simply has no timeline.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperjoule.errors import ReportError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TIMELINE_FILE", "Timeline", "find_timeline", "read_timeline"]

logger = logging.getLogger(__name__)

TIMELINE_FILE = Path("energy") / "gpu.csv"
"""Where a run's GPU timeline lives, relative to its run directory."""


@dataclass
class Timeline:
    """A run's GPU samples.

    Attributes:
        run_id: The run.
        path: The CSV file.
        samples: One row per sample and GPU (``time_s``, ``gpu``, ``power_w``, ...).
    """

    run_id: str
    path: Path
    samples: pd.DataFrame


MAX_CHECKED = 500
"""Most run directories searched for a timeline when none is asked for (newest first)."""


def _run_dir(results_dir: Path, run: Any) -> Path:
    """A run's directory: the recorded one, else its place under ``results_dir``.

    Records hold absolute run directories; a results directory copied or moved elsewhere
    still finds its runs in the standard layout.
    """
    standard = results_dir / str(run.study) / str(run.session) / str(run.run_id)
    directory = run.run_dir
    if isinstance(directory, str) and directory:
        path = Path(directory)
        path = path if path.is_absolute() else results_dir / path
        if path.is_dir() or not standard.is_dir():
            return path
    return standard


def find_timeline(
    runs: pd.DataFrame, results_dir: Path, run_id: str | None = None
) -> tuple[str, Path] | None:
    """The run whose timeline to show and its CSV: ``run_id``, else the newest that has one.

    Without ``run_id``, only runs that sampled GPU power are searched, newest first, at
    most :data:`MAX_CHECKED` of them (a file check per run is slow on 100,000 runs).

    Raises:
        ReportError: ``run_id`` is not among the runs, or it has no timeline.
    """
    columns = ["run_id", "study", "session", "run_dir", "started_at", "power_samples"]
    if run_id is not None:
        match = runs.loc[runs["run_id"] == run_id, columns]
        if match.empty:
            raise ReportError(f"--timeline-run {run_id}: no such run in this report's runs")
        path = _run_dir(Path(results_dir), next(match.itertuples())) / TIMELINE_FILE
        if not path.is_file():
            raise ReportError(
                f"--timeline-run {run_id}: no timeline recorded ({path} is missing; "
                "only runs measured with a GPU meter have one)"
            )
        return run_id, path
    sampled = runs.loc[runs["power_samples"].fillna(0) > 0, columns]
    newest = sampled.sort_values(["started_at", "run_id"], ascending=False, na_position="last")
    for run in newest.head(MAX_CHECKED).itertuples():
        path = _run_dir(Path(results_dir), run) / TIMELINE_FILE
        if path.is_file():
            return str(run.run_id), path
    return None


def read_timeline(run_id: str, path: Path) -> Timeline | None:
    """Read a timeline CSV; None (with a log line) when it is empty or unreadable."""
    import pandas as pd

    try:
        samples = pd.read_csv(path)
    except (OSError, ValueError) as e:
        logger.warning("%s: cannot read the timeline: %s", path, e)
        return None
    wanted = {"power_w", "temp_c", "util_pct"}
    if samples.empty or "time_s" not in samples.columns or not wanted & set(samples.columns):
        logger.warning("%s: no samples of power, temperature or utilisation", path)
        return None
    if "gpu" not in samples.columns:
        samples["gpu"] = 0
    return Timeline(run_id=run_id, path=path, samples=samples)
