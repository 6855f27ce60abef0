"""``hyperjoule export``: the flat run table as CSV, Parquet or JSON Lines.

All three carry the same columns (``hyperjoule/docs/export-schema.md``). Parquet keeps every type;
CSV and JSONL are read back with :func:`read_export`, which restores the schema's types.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from hyperjoule.errors import StorageError
from hyperjoule.report.analysis._summary import ReportError
from hyperjoule.report.load._frame import (
    apply_schema_dtypes,
    hp_columns,
    load_runs,
    typed_hp_series,
)
from hyperjoule.storage import refuse_results_file

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "EXPORT_FORMATS",
    "STREAM_FORMATS",
    "export_runs",
    "read_export",
    "write_atomically",
    "write_runs",
    "write_runs_stream",
]

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "parquet", "jsonl")
STREAM_FORMATS = ("csv", "jsonl")
"""Formats that can be written to a stream (standard output); Parquet needs a file."""


def _check_format(fmt: str) -> str:
    if fmt not in EXPORT_FORMATS:
        raise ReportError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    return fmt


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(target: Path, write: Callable[[Path], object], what: str) -> None:
    """Write a file through ``write(temporary path)``, then move it in place.

    Readers never see half a file, and a failed write leaves the old file as it was.

    Raises:
        StorageError: The file cannot be written (names the file and ``what`` it is).
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
    except OSError as e:
        raise StorageError(f"{target}: cannot write the {what}: {e}") from e
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; results are shared
        os.replace(tmp, target)
    except (OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"{target}: cannot write the {what}: {e}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _iso(frame: pd.DataFrame) -> pd.DataFrame:
    out: pd.DataFrame = frame.copy()
    for column in ("started_at", "ended_at"):
        # ISO 8601 with an explicit offset and milliseconds, like the records themselves.
        out[column] = out[column].map(
            lambda t: None if pd_isna(t) else t.isoformat(timespec="milliseconds")
        )
    return out


def pd_isna(value: Any) -> bool:
    """True for None, NaN, NaT and NA."""
    import pandas as pd

    return bool(pd.isna(value))


def write_runs(runs: pd.DataFrame, path: Path | str, fmt: str) -> Path:
    """Write a run table in ``fmt`` (``csv``, ``parquet``, ``jsonl``), atomically.

    Missing values are empty CSV cells and JSON ``null``; times are ISO 8601 UTC.

    Raises:
        ReportError: Unknown format.
        StorageError: The file cannot be written.
    """
    _check_format(fmt)
    target = Path(path)

    def write(tmp: Path) -> None:
        if fmt == "parquet":
            runs.to_parquet(tmp, engine="pyarrow", index=False)
        else:
            with tmp.open("w", encoding="utf-8", newline="") as f:
                write_runs_stream(runs, f, fmt)

    write_atomically(target, write, "export")
    return target


def write_runs_stream(runs: pd.DataFrame, stream: TextIO, fmt: str) -> None:
    """Write a run table as CSV or JSON Lines to an open text stream (standard output).

    The same bytes :func:`write_runs` puts in a file.

    Raises:
        ReportError: ``fmt`` is not one of :data:`STREAM_FORMATS`.
    """
    if fmt not in STREAM_FORMATS:
        raise ReportError(f"{fmt} cannot be written to standard output; give a file name with -o")
    if fmt == "jsonl":
        _iso(runs).to_json(stream, orient="records", lines=True, force_ascii=False)
    else:
        _iso(runs).to_csv(stream, index=False, lineterminator="\n")


def export_runs(
    results_dir: Path | str, path: Path | str, fmt: str, *, study: str | None = None
) -> int:
    """Export the runs of a results directory; returns the number of rows written.

    Raises:
        StorageError: No database, no runs, unknown study, ``path`` is a results file
            (the database, a run directory's file), or it cannot be written.
        ReportError: Unknown format.
    """
    _check_format(fmt)
    refuse_results_file(path, results_dir)
    runs = load_runs(results_dir, study)
    write_runs(runs, path, fmt)
    logger.info("exported %d runs to %s", len(runs), path)
    return len(runs)


def read_export(path: Path | str, fmt: str | None = None) -> pd.DataFrame:
    """Read an export back with the schema's column types.

    ``hp_*`` columns of CSV and JSONL files are typed from their values (integers as
    ``Int64``, booleans as ``boolean``, numbers as ``float64``, else text).

    Args:
        path: The exported file.
        fmt: ``csv``, ``parquet`` or ``jsonl``; None: from the file's suffix.
    """
    import pandas as pd

    source = Path(path)
    fmt = _check_format(fmt or source.suffix.lstrip(".").lower())
    try:
        if fmt == "parquet":
            return pd.read_parquet(source, engine="pyarrow")
        if fmt == "jsonl":
            return _read_jsonl(source)
        hps = hp_columns(pd.read_csv(source, nrows=0).columns)
        # Hyperparameters as text first: "5" and "5.0" tell an int from a float column.
        frame = pd.read_csv(source, dtype=dict.fromkeys(hps, "str"), low_memory=False)
    except (OSError, ValueError) as e:
        raise StorageError(f"{source}: cannot read the export: {e}") from e
    for column in hps:
        frame[column] = _hp_from_text(frame[column])
    return apply_schema_dtypes(frame)


def _read_jsonl(source: Path) -> pd.DataFrame:
    import pandas as pd

    with source.open(encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    frame = pd.DataFrame.from_records(records)
    for column in hp_columns(frame.columns):
        frame[column] = typed_hp_series([r.get(column) for r in records], column)
    return apply_schema_dtypes(frame)


_INT_TEXT = re.compile(r"^[-+]?[0-9]+$")


def _hp_from_text(series: pd.Series[Any]) -> pd.Series[Any]:
    """Type a hyperparameter column read as text, as ``typed_hp_series`` types values."""
    values: list[Any] = []
    for text in series.tolist():
        if not isinstance(text, str):
            values.append(None)
        elif text in ("True", "False"):
            values.append(text == "True")
        elif _INT_TEXT.match(text):
            values.append(int(text))
        else:
            try:
                values.append(float(text))
            except ValueError:
                values.append(text)
    return typed_hp_series(values, str(series.name))
