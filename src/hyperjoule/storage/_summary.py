"""``summary.csv``: one flat row per run, in the column order of the lab's earlier workflow.

Columns: :data:`SUMMARY_LEADING_COLUMNS`, then ``hyperparam_<name>`` and ``perf_<metric>`` columns
(each group sorted by name), then :data:`ENERGY_COLUMNS`, then hyperjoule's own
:data:`OUR_COLUMNS`. An unmeasured figure is an empty cell, never ``0``.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hyperjoule._text import encodable
from hyperjoule.errors import StorageError
from hyperjoule.records import RunRecord, RunStatus
from hyperjoule.storage._layout import atomic_write_text

__all__ = [
    "ENERGY_COLUMNS",
    "HYPERPARAM_PREFIX",
    "SUMMARY_LEADING_COLUMNS",
    "OUR_COLUMNS",
    "PERF_PREFIX",
    "SUMMARY_BASE_COLUMNS",
    "SummaryCsv",
    "flat_row",
    "summary_columns",
]

logger = logging.getLogger(__name__)

HYPERPARAM_PREFIX = "hyperparam_"
PERF_PREFIX = "perf_"

SUMMARY_LEADING_COLUMNS = (
    "experiment_id",
    "timestamp",
    "repository",
    "model",
    "training_success",
    "duration_seconds",
    "retries",
)
"""Columns before the ``hyperparam_*`` and ``perf_*`` ones."""

ENERGY_COLUMNS = (
    "energy_cpu_pkg_joules",
    "energy_cpu_ram_joules",
    "energy_cpu_total_joules",
    "energy_gpu_avg_watts",
    "energy_gpu_max_watts",
    "energy_gpu_min_watts",
    "energy_gpu_total_joules",
    "energy_gpu_temp_avg_celsius",
    "energy_gpu_temp_max_celsius",
    "energy_gpu_util_avg_percent",
    "energy_gpu_util_max_percent",
)
"""The lab workflow's energy columns, after the ``perf_*`` ones."""

CARBON_SUMMARY_COLUMNS = (
    "carbon_co2e_grams",
    "carbon_attempts_co2e_grams",
    "carbon_intensity_grams_per_kwh",
    "carbon_pue",
    "carbon_source",
)
"""The estimated CO₂e of the run and of all its attempts, and its inputs (last)."""

OUR_COLUMNS = (
    "mode",
    "status",
    "run_id",
    "session",
    "slot_id",
    "mutated",
    "attempts",
    "exit_code",
    "energy_total_joules",
    "energy_attempts_total_joules",
    "energy_gpu_method",
    "energy_cpu_pkg_method",
    "energy_cpu_dram_method",
    "energy_total_method",
    "energy_attribution",
    "background_target",
    "background_model",
    "background_runs",
    "background_effective",
    "error",
    *CARBON_SUMMARY_COLUMNS,
)
"""hyperjoule's own columns, last, so the lab's column positions stay as they were."""

SUMMARY_BASE_COLUMNS = (*SUMMARY_LEADING_COLUMNS, *ENERGY_COLUMNS, *OUR_COLUMNS)
"""Every fixed column in order; the dynamic ones go between leading and energy columns."""


def _sum_available(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return float(sum(present)) if present else None


def flat_row(record: RunRecord) -> dict[str, Any]:
    """Return a record as one flat row, keys in summary column order.

    Unmeasured figures are None (an empty CSV cell), never 0.
    """
    energy, power = record.energy, record.power
    gpu, pkg, dram = energy.get("gpu"), energy.get("cpu_pkg"), energy.get("cpu_dram")
    row: dict[str, Any] = {
        "experiment_id": record.slot_id,
        "timestamp": record.started_at,
        "repository": record.target,
        "model": record.model,
        "training_success": str(record.status is RunStatus.SUCCEEDED),
        "duration_seconds": record.duration_s,
        "retries": max(record.attempts - 1, 0),
    }
    for name in sorted(record.hyperparameters):
        row[HYPERPARAM_PREFIX + name] = record.hyperparameters[name]
    for name in sorted(record.metrics):
        row[PERF_PREFIX + name] = record.metrics[name]
    row.update(
        {
            "energy_cpu_pkg_joules": pkg.energy_j,
            "energy_cpu_ram_joules": dram.energy_j,
            "energy_cpu_total_joules": _sum_available(pkg.energy_j, dram.energy_j),
            "energy_gpu_avg_watts": power.gpu_avg_w,
            "energy_gpu_max_watts": power.gpu_max_w,
            "energy_gpu_min_watts": power.gpu_min_w,
            "energy_gpu_total_joules": gpu.energy_j,
            "energy_gpu_temp_avg_celsius": power.gpu_temp_avg_c,
            "energy_gpu_temp_max_celsius": power.gpu_temp_max_c,
            "energy_gpu_util_avg_percent": power.gpu_util_avg_pct,
            "energy_gpu_util_max_percent": power.gpu_util_max_pct,
            "mode": record.mode,
            "status": record.status.value,
            "run_id": record.run_id,
            "session": record.session,
            "slot_id": record.slot_id,
            "mutated": ";".join(record.mutated),
            "attempts": record.attempts,
            "exit_code": record.exit_code,
            "energy_total_joules": energy.total_j,
            # Every attempt, retries and failures included (empty: none was measured).
            "energy_attempts_total_joules": record.attempts_energy.total_j,
            "energy_gpu_method": gpu.method,
            "energy_cpu_pkg_method": pkg.method,
            "energy_cpu_dram_method": dram.method,
            "energy_total_method": energy.total_method,
            "energy_attribution": _attribution(record),
            **_background_cells(record),
            "error": record.error,
            **_carbon_cells(record),
        }
    )
    return row


def _carbon_cells(record: RunRecord) -> dict[str, Any]:
    """The CO₂e estimate and its inputs; empty cells when the study asked for none."""
    carbon = record.carbon
    if carbon is None:
        return dict.fromkeys(CARBON_SUMMARY_COLUMNS)
    return {
        "carbon_co2e_grams": carbon.co2e_g,
        "carbon_attempts_co2e_grams": carbon.attempts_co2e_g,
        "carbon_intensity_grams_per_kwh": carbon.intensity_g_per_kwh,
        "carbon_pue": carbon.pue,
        "carbon_source": carbon.source,
    }


def _attribution(record: RunRecord) -> str | None:
    """The run's attribution: ``combined`` > ``apportioned`` > ``exclusive``.

    ``combined`` when any measured figure includes other work, ``apportioned`` when any
    is a share of a device that concurrent runs used.
    """
    measured = {c.attribution for c in record.energy.components.values() if c.energy_j is not None}
    if not measured:
        return None
    for attribution in ("combined", "apportioned"):
        if attribution in measured:
            return attribution
    return "exclusive"


def _background_cells(record: RunRecord) -> dict[str, Any]:
    bg = record.background
    if not bg:
        return {
            "background_target": None,
            "background_model": None,
            "background_runs": None,
            "background_effective": None,
        }
    jobs = bg.get("jobs") or [bg]
    counts = [(j.get("runs") or {}).get("count") for j in jobs]
    effective = bg.get("effective")
    return {
        "background_target": ";".join(str(j.get("target")) for j in jobs),
        "background_model": ";".join(str(j.get("model") or "") for j in jobs),
        # Unknown (imported) stays empty: never a made-up 0 or False.
        "background_runs": sum(counts) if None not in counts else None,
        "background_effective": bool(effective) if effective is not None else None,
    }


def _order(columns: Iterable[str]) -> list[str]:
    """Put columns in summary order; unknown ones (from another version) keep theirs, last."""
    names = list(dict.fromkeys(columns))
    base = set(SUMMARY_BASE_COLUMNS)
    hyper = sorted(c for c in names if c.startswith(HYPERPARAM_PREFIX) and c not in base)
    perf = sorted(c for c in names if c.startswith(PERF_PREFIX) and c not in base)
    known = base | set(hyper) | set(perf)
    extra = [c for c in names if c not in known]
    return [*SUMMARY_LEADING_COLUMNS, *hyper, *perf, *ENERGY_COLUMNS, *OUR_COLUMNS, *extra]


def summary_columns(records: Iterable[RunRecord]) -> list[str]:
    """Return the summary columns for ``records`` (every fixed column, plus dynamic ones)."""
    columns: list[str] = []
    for record in records:
        columns += [HYPERPARAM_PREFIX + n for n in record.hyperparameters]
        columns += [PERF_PREFIX + n for n in record.metrics]
    return _order(columns)


def _render(header: list[str], rows: Iterable[dict[str, Any]], *, with_header: bool) -> str:
    buffer = io.StringIO()
    # extrasaction="ignore" only drops the overflow cells of a hand-damaged old row: headers
    # are always built from the keys of the rows written under them.
    writer = csv.DictWriter(
        buffer, fieldnames=header, restval="", extrasaction="ignore", lineterminator="\n"
    )
    if with_header:
        writer.writeheader()
    writer.writerows(rows)
    # Names recorded before they were checked may hold lone surrogates: escape, never crash.
    return encodable(buffer.getvalue())


class SummaryCsv:
    """A session's ``summary.csv``, appended to (and synced) after every run.

    When a run brings a column the header lacks (a new hyperparameter or metric), the file
    is rewritten atomically with the wider header; earlier rows get empty cells there. An
    existing file (a resumed session) is continued under its own header.

    Args:
        path: The CSV file; its parent directories are created on the first append.

    Raises:
        StorageError: An existing file is not a summary, or the file cannot be written.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._header: list[str] | None = None
        if self.path.exists():
            self._header = self._read_header()

    @property
    def columns(self) -> list[str] | None:
        """The current header, or None before the file exists."""
        return None if self._header is None else list(self._header)

    def _read_header(self) -> list[str] | None:
        try:
            with self.path.open("rb+") as f:
                data = f.read()
                if data and not data.endswith(b"\n"):
                    # A crash mid-append left half a row; the database still has the run.
                    cut = data.rfind(b"\n") + 1
                    logger.warning("%s: dropping an incomplete last line", self.path)
                    f.truncate(cut)
                    data = data[:cut]
        except OSError as e:
            raise StorageError(f"{self.path}: cannot read summary: {e}") from e
        header = next(csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))), None)
        if not header:
            return None
        missing = [c for c in SUMMARY_LEADING_COLUMNS if c not in header]
        if missing:
            raise StorageError(
                f"{self.path}: not a hyperjoule summary (header lacks {', '.join(missing)}); "
                "move the file away"
            )
        return header

    def append(self, record: RunRecord) -> None:
        """Append ``record`` as one row and sync the file to disk before returning.

        Raises:
            StorageError: The file cannot be written.
        """
        row = flat_row(record)
        if self._header is None or not self.path.exists():
            header = _order(row)
            atomic_write_text(self.path, _render(header, [row], with_header=True))
            self._header = header
            return
        if any(c not in self._header for c in row):
            self._widen(self._header, row)
            return
        text = _render(self._header, [row], with_header=False)
        try:
            with self.path.open("a", encoding="utf-8", newline="") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise StorageError(f"{self.path}: cannot append to summary: {e}") from e

    def _widen(self, current: list[str], row: dict[str, Any]) -> None:
        header = _order([*current, *row])
        try:
            with self.path.open(encoding="utf-8", newline="") as f:
                old_rows: list[dict[str, Any]] = list(csv.DictReader(f))
        except OSError as e:
            raise StorageError(f"{self.path}: cannot read summary: {e}") from e
        logger.debug("%s: widening header to %d columns", self.path, len(header))
        atomic_write_text(self.path, _render(header, [*old_rows, row], with_header=True))
        self._header = header
