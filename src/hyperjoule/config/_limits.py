"""Bounds on config values: what no real study needs and what would break the runner.

A study of a billion runs would be planned in memory before anything ran; a pause of
``1e10`` s or ``.inf`` overflows the sleep after the first run; a name such as
``../../x`` becomes a directory. Each is refused at load time with the field's line.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

__all__ = [
    "MAX_NESTING",
    "MAX_PAUSE_S",
    "MAX_PLANNED_RUNS",
    "MAX_RETRIES",
    "MAX_TIMEOUT_S",
    "NAME_PATTERN",
    "Name",
    "PauseS",
    "Runs",
    "TimeoutS",
]

MAX_PLANNED_RUNS = 100_000
"""Most runs one study may plan (all experiments together)."""
MAX_TIMEOUT_S = 30 * 86_400.0
"""Longest timeout of one run: 30 days."""
MAX_PAUSE_S = 86_400.0
"""Longest pause, warm-up or baseline: one day."""
MAX_RETRIES = 100
"""Most retries of one run (each attempt is kept in the record)."""
MAX_NESTING = 32
"""Deepest nesting of mappings and lists in a config file."""
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
"""Names that become directory names: letters, digits, ``_ . -``, no leading dot."""

Runs = Annotated[int, Field(ge=1, le=MAX_PLANNED_RUNS)]
TimeoutS = Annotated[float, Field(gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)]
PauseS = Annotated[float, Field(ge=0, le=MAX_PAUSE_S, allow_inf_nan=False)]
PositivePauseS = Annotated[float, Field(gt=0, le=MAX_PAUSE_S, allow_inf_nan=False)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=100)]
