"""``hyperjoule report``: one self-contained HTML file from a results directory."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hyperjoule.report._pool import FigurePool, default_workers
from hyperjoule.report.analysis._search import SearchFront, search_fronts
from hyperjoule.report.analysis._sensitivity import MIN_RUNS
from hyperjoule.report.analysis._summary import analysed_metrics, group_labels
from hyperjoule.report.analysis._target import TargetMetric, auto_target_metric, parse_target_metric
from hyperjoule.report.load._frame import RunTables, count_runs, load_tables
from hyperjoule.report.load._timeline import find_timeline, read_timeline
from hyperjoule.report.render._export import write_atomically
from hyperjoule.report.render._html import page
from hyperjoule.report.render._report_data import ReportData
from hyperjoule.report.render._sections_params import hyperparameter_section
from hyperjoule.report.render._sections_runs import (
    pareto_section,
    summary_section,
    target_section,
)
from hyperjoule.report.render._sections_search import search_section
from hyperjoule.report.render._sections_study import (
    cost_section,
    header,
    methods_section,
    parallel_section,
    timeline_section,
)
from hyperjoule.storage import refuse_results_file

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ReportInfo", "render_report", "write_report"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportInfo:
    """What ``write_report`` wrote.

    Attributes:
        path: The HTML file.
        runs: Runs in the report.
        timeline_run: The run whose timeline is shown, None when none was recorded.
        target: The energy-to-target threshold used (``test_accuracy >= 0.95``), or None.
    """

    path: Path
    runs: int
    timeline_run: str | None
    target: str | None


def render_report(
    tables: RunTables,
    results_dir: Path,
    *,
    title: str,
    target_metric: str | None = None,
    timeline_run: str | None = None,
    pool: FigurePool | None = None,
    searches: Sequence[SearchFront] = (),
) -> tuple[str, ReportInfo]:
    """Build the report's HTML from loaded tables; returns the HTML and what it shows.

    With a ``pool`` of workers the HTML holds placeholders until ``pool.fill(html)``;
    without one every figure is drawn inline.

    Raises:
        ReportError: ``target_metric`` is malformed or names no metric; ``timeline_run``
            is unknown or has no timeline.
    """
    from hyperjoule.provenance import hyperjoule_version

    runs = tables.runs.assign(group=group_labels(tables.runs))
    target: TargetMetric | None
    if target_metric is not None:
        target = parse_target_metric(target_metric, list(runs.columns))
    else:
        target = auto_target_metric(runs, tables.goals)
    found = find_timeline(runs, results_dir, timeline_run)
    timeline = read_timeline(*found) if found is not None else None
    data = ReportData(
        runs=runs,
        attempts=tables.attempts,
        results_dir=results_dir,
        title=title,
        metrics=analysed_metrics(runs),
        target=target,
        pool=pool or FigurePool(0),
        goals=tables.goals,
    )
    sections = [
        ("summary", "Summary per target and model", summary_section),
        ("pareto", "Energy against performance: Pareto fronts", pareto_section),
        ("target", "Energy to reach a target", target_section),
        ("hyperparameters", "Hyperparameters: effects and sensitivity", hyperparameter_section),
        ("parallel", "Parallel against isolated runs", parallel_section),
        ("cost", "What the study cost", cost_section),
    ]
    built = []
    for anchor, heading, build in sections:
        built.append((anchor, heading, build(data)))
        logger.debug("report: section %s built", anchor)
    if searches:
        built.insert(
            2,
            (
                "search",
                "Energy-aware search: the fronts found",
                search_section(searches, data.pool),
            ),
        )
    built.append(("timeline", "Timeline of one run", timeline_section(timeline, data)))
    built.append(("methods", "Methods", methods_section(data)))
    html = page(f"hyperjoule report: {title}", header(data, hyperjoule_version()), built)
    info = ReportInfo(
        path=Path(),
        runs=len(runs),
        timeline_run=None if timeline is None else timeline.run_id,
        target=None if target is None else str(target),
    )
    return html, info


def _searches(results: Path, study: str | None) -> list[SearchFront]:
    """Every recorded search's outcome; other records are decoded only when there is one."""
    from hyperjoule.storage import ResultsStore

    with ResultsStore(results, create=False) as store:
        searches = list(store.iter_runs(study, modes=("search",)))
        if not searches:
            return []
        # Random mutation of the same targets, from any study, is the comparison.
        records = list(store.iter_runs(modes=("search", "mutation")))
    return search_fronts(records, study)


def expected_figures(runs: pd.DataFrame) -> int:
    """About how many figures a report draws: three per target/model with enough runs."""
    counts = group_labels(runs)[runs["status"] == "succeeded"].value_counts()
    return 2 + 3 * int((counts >= MIN_RUNS).sum())


def write_report(
    results_dir: Path | str,
    output: Path | str = "report.html",
    *,
    study: str | None = None,
    target_metric: str | None = None,
    timeline_run: str | None = None,
) -> ReportInfo:
    """Write the HTML report of a results directory (one study, or all of them).

    Args:
        results_dir: The results directory.
        output: The HTML file to write (replaced atomically).
        study: Only this study; None: every study in the database.
        target_metric: Energy-to-target threshold, ``METRIC>=VALUE`` (or ``<=``, ``>``,
            ``<``); None: chosen automatically.
        timeline_run: Run whose GPU timeline to show; None: the newest run that has one.

    Raises:
        StorageError: No database, no runs, unknown study, ``output`` is a results file
            (the database, a run directory's file), or it cannot be written.
        ReportError: Bad ``target_metric`` or ``timeline_run``.
    """
    results = Path(results_dir)
    refuse_results_file(output, results)
    start_s = time.perf_counter()
    # Workers start first: they import matplotlib while this process reads the runs.
    with FigurePool(default_workers(count_runs(results, study))) as pool:
        tables = load_tables(results, study, pool=pool)
        logger.debug(
            "report: %d runs read in %.1f s", len(tables.runs), time.perf_counter() - start_s
        )
        pool.start(default_workers(len(tables.runs), expected_figures(tables.runs)))
        title = study if study is not None else "all studies"
        studies = sorted(tables.runs["study"].dropna().unique())
        if study is None and len(studies) == 1:
            title = str(studies[0])
        html, info = render_report(
            tables,
            results,
            title=title,
            target_metric=target_metric,
            timeline_run=timeline_run,
            pool=pool,
            searches=_searches(results, study),
        )
        logger.debug("report: sections built at %.1f s", time.perf_counter() - start_s)
        html = pool.fill(html)
        logger.debug("report: figures drawn at %.1f s", time.perf_counter() - start_s)
    path = Path(output)
    write_atomically(path, lambda tmp: tmp.write_text(html, encoding="utf-8"), "report")
    logger.info("wrote %s (%d runs)", path, info.runs)
    return ReportInfo(path=path, runs=info.runs, timeline_run=info.timeline_run, target=info.target)
