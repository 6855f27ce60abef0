"""Exceptions raised by hyperjoule.

Every error a user can cause derives from :class:`HyperjouleError`; the CLI catches
exactly this type, prints its message on one line and exits with status 2::

    HyperjouleError
    ├── ConfigError      a targets or study file is malformed (names file, line, field, fix)
    ├── PlanError        a valid study asks for something the space cannot satisfy
    ├── StorageError     the results directory or database cannot be used
    ├── MeterError       a requested measurement cannot be taken (device, permission)
    ├── PreflightError   the machine is not ready for the study (missing assets, ...)
    └── ExecutorError    an executor cannot run a task (no node has the GPUs it needs, ...)
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ConfigError",
    "ExecutorError",
    "HyperjouleError",
    "MeterError",
    "PlanError",
    "PreflightError",
    "ReportError",
    "StorageError",
]


class HyperjouleError(Exception):
    """Base class of every error caused by user input or the environment."""


class ConfigError(HyperjouleError):
    """A targets or study file is malformed.

    Args:
        path: The file that holds the problem.
        field: Dotted path of the offending field (``targets.cnn.hyperparameters.lr``),
            or ``""`` when the whole file is at fault.
        message: What is wrong and how to fix it.
        line: 1-based line of the field in the file, when known.
    """

    def __init__(self, path: Path | str, field: str, message: str, line: int | None = None):
        self.path = Path(path)
        self.field = field
        self.line = line
        self.message = message
        location = str(path) if line is None else f"{path}:{line}"
        where = f"{location}: {field}: " if field else f"{location}: "
        super().__init__(where + message)


class PlanError(HyperjouleError):
    """A study is valid but cannot be planned as asked (e.g. too few distinct values)."""


class StorageError(HyperjouleError):
    """The results directory or database cannot be read or written."""


class ReportError(HyperjouleError):
    """The report or export cannot be made as asked (unknown metric, bad threshold, ...)."""


class MeterError(HyperjouleError):
    """A requested energy measurement cannot be taken."""


class PreflightError(HyperjouleError):
    """The machine is not ready to run the study (missing assets, busy devices, ...)."""


class ExecutorError(HyperjouleError):
    """An executor cannot run a task (no node has the GPUs it asks for, back-end lost)."""
