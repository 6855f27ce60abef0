"""Reading the lab workflow's files: JSON documents, reported keys, loosely typed values.

The old tool wrote numbers as JSON numbers, as CSV text (``"7"``, ``"7.000000"``), and
booleans as ``true``/``"True"``; missing figures as ``null``, ``NaN`` or an empty cell.
Everything here turns those into Python values once, so the converters do not guess.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from hyperjoule.config._values import as_finite_float
from hyperjoule.config._yaml import read_config_text
from hyperjoule.errors import ConfigError

__all__ = [
    "LegacyWarning",
    "bool_at",
    "count_at",
    "is_comment_key",
    "is_missing",
    "merge_warnings",
    "normalise_timestamp",
    "number_at",
    "parse_bool",
    "parse_number",
    "read_json_object",
    "read_json_value",
    "text_or_none",
]

_COMMENT_KEYS = ("comment", "comments", "_comment", "note", "notes", "//", "#")
_MISSING_TEXT = {"", "nan", "none", "null", "n/a", "na"}
_TRUE_TEXT = {"true", "yes", "1", "success", "succeeded"}
_FALSE_TEXT = {"false", "no", "0", "failed", "failure"}


@dataclass(frozen=True)
class LegacyWarning:
    """A key of an old file that hyperjoule cannot express, and what happened to it.

    Attributes:
        path: The old file that holds the key.
        key: Dotted path of the key in that file (``experiments.2.mutate_params``).
        message: What was done with it and what to do instead.
    """

    path: Path
    key: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.path}: {self.key}: {self.message}"
            if self.key
            else f"{self.path}: {self.message}"
        )


def merge_warnings(warnings: Iterable[LegacyWarning]) -> list[LegacyWarning]:
    """Collapse repeats of one (key, message) across files into one line with a count.

    An import of a thousand old runs would otherwise print the same line a thousand times.
    """
    first: dict[tuple[str, str], LegacyWarning] = {}
    counts: dict[tuple[str, str], int] = {}
    for warning in warnings:
        ident = (warning.key, warning.message)
        if ident not in first:
            first[ident] = warning
            counts[ident] = 0
        elif warning.path != first[ident].path:
            counts[ident] += 1
    merged: list[LegacyWarning] = []
    for ident, warning in first.items():
        more = counts[ident]
        if more:
            plural = "s" if more > 1 else ""
            warning = LegacyWarning(
                warning.path, warning.key, f"{warning.message} (and in {more} more file{plural})"
            )
        merged.append(warning)
    return merged


def is_comment_key(key: str) -> bool:
    """True for keys the lab used as comments (``comment``, ``_comment_2``, ``//``)."""
    name = key.strip().lower()
    return name in _COMMENT_KEYS or name.startswith(("_comment", "comment_", "//", "#"))


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON file whose top level is an object.

    Raises:
        ConfigError: The file is missing, unreadable, not JSON or not an object.
    """
    data = read_json_value(path, what)
    if not isinstance(data, dict):
        raise ConfigError(path, "", f"{what} must be a JSON object at the top level")
    return data


def read_json_value(path: Path, what: str) -> Any:
    """Read a JSON file, whatever its top level holds.

    Raises:
        ConfigError: The file is missing, unreadable or not JSON.
    """
    text = read_config_text(Path(path), what)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(path, "", f"invalid JSON: {e.msg}", line=e.lineno) from None
    return data


def is_missing(value: object) -> bool:
    """True for the old tool's ways of writing "no value": None, NaN, empty or 'nan' text."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, str):
        return value.strip().lower() in _MISSING_TEXT
    return False


def parse_bool(value: object) -> bool | None:
    """Read a boolean written as JSON, CSV text (``True``, ``false``, ``1``) or None.

    Raises:
        ValueError: The value is not a recognisable boolean.
    """
    if is_missing(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE_TEXT:
            return True
        if text in _FALSE_TEXT:
            return False
    raise ValueError(f"{value!r} is not true or false")


def parse_number(value: object) -> float | None:
    """Read a number written as JSON or CSV text; None for a missing value.

    Raises:
        ValueError: The value is not a finite number.
    """
    return None if is_missing(value) else as_finite_float(value)


def normalise_timestamp(value: str) -> str:
    """ISO form of an old timestamp (both ``T`` and space separators); as written otherwise."""
    text = value.strip()
    for parse in (datetime.fromisoformat, lambda t: datetime.strptime(t, "%Y%m%d_%H%M%S")):
        try:
            return parse(text).isoformat()
        except ValueError:
            continue
    return text


def text_or_none(value: Any) -> str | None:
    """A cell or JSON value as stripped text; None when missing."""
    return None if is_missing(value) else str(value).strip()


def number_at(value: Any, path: Path, where: str, line: int | None = None) -> float | None:
    """:func:`parse_number`, failing with a :class:`ConfigError` at ``path``/``where``."""
    try:
        return parse_number(value)
    except ValueError as e:
        raise ConfigError(path, where, str(e), line=line) from None


def bool_at(value: Any, path: Path, where: str, line: int | None = None) -> bool | None:
    """:func:`parse_bool`, failing with a :class:`ConfigError` at ``path``/``where``."""
    try:
        return parse_bool(value)
    except ValueError as e:
        raise ConfigError(path, where, str(e), line=line) from None


def count_at(value: Any, path: Path, where: str, line: int | None = None) -> int | None:
    """A whole number >= 0 (retries), failing with a :class:`ConfigError`."""
    number = number_at(value, path, where, line)
    if number is None:
        return None
    if not number.is_integer() or number < 0:
        raise ConfigError(path, where, f"{value!r} is not a count", line=line)
    return int(number)
