"""Intermediate metrics read while a run is in flight (search pruning).

A target that prints ``HYPERJOULE_METRICS {"epoch": 3, "val_accuracy": 0.91}`` each
epoch lets a search stop it early. The watch tails the attempt's log (only complete
lines, only the new bytes, a few times a second), keeps every point with a numeric
step, and hands each new point to a callback that answers whether to stop the run. Log
text is untrusted: a malformed line is skipped, never fatal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from hyperjoule.metrics import STRUCTURED_PREFIX
from hyperjoule.metrics._bounds import (
    MAX_METRICS,
    ProblemLog,
    as_metric_value,
    check_metric_name,
    parse_bounded_json,
)

__all__ = ["IntermediateWatch", "PointCallback"]

PointCallback = Callable[[dict[str, float]], bool]
"""Receives each intermediate point of a search run; True stops (prunes) the run."""

_MAX_LINE_BYTES = 64 * 1024  # a longer line is cut (and then is no JSON)
_MAX_POINTS = 10_000  # a target printing every batch must not grow the record forever


class IntermediateWatch:
    """Follows one attempt's log for structured lines carrying a step.

    Args:
        log_path: The attempt's log (may not exist yet).
        step_key: Name of the step counter in the lines (``epoch``).
        on_point: Called with each new point; returning True stops the run.
        interval_s: Minimum time between reads of the log.
    """

    def __init__(
        self,
        log_path: Path,
        step_key: str,
        on_point: PointCallback | None,
        interval_s: float = 0.1,
    ) -> None:
        self.log_path = log_path
        self.step_key = step_key
        self.on_point = on_point
        self.interval_s = interval_s
        self.points: list[dict[str, float]] = []
        self._offset = 0
        self._partial = b""
        self._last_read = 0.0
        self._stop = False
        # The final extraction reports the problems of these lines; here they are dropped.
        self._problems = ProblemLog()

    def should_stop(self) -> bool:
        """Read what is new in the log; True once a point asked to stop the run."""
        now = time.monotonic()
        if self._stop or now - self._last_read < self.interval_s:
            return self._stop
        self._last_read = now
        self.read_new()
        return self._stop

    def read_new(self) -> None:
        """Consume the complete lines written since the last read."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.replace(b"\r", b"\n").split(b"\n")
        self._partial = lines.pop()[-_MAX_LINE_BYTES:]
        for line in lines:
            point = self._parse(line)
            if point is None or len(self.points) >= _MAX_POINTS:
                continue
            self.points.append(point)
            if self.on_point is not None and not self._stop and self.on_point(point):
                self._stop = True

    def _parse(self, line: bytes) -> dict[str, float] | None:
        text = line.decode(errors="replace")
        at = text.find(STRUCTURED_PREFIX)
        if at < 0:
            return None
        where = "intermediate metrics"
        data = parse_bounded_json(
            text[at + len(STRUCTURED_PREFIX) :].strip(), where, self._problems
        )
        if data is None or self.step_key not in data:
            return None
        point: dict[str, float] = {}
        for raw_name, raw in list(data.items())[:MAX_METRICS]:
            name = check_metric_name(raw_name, where, self._problems)
            value = as_metric_value(name, raw, where, self._problems) if name else None
            if name is not None and value is not None:
                point[name] = value
        return point if self.step_key in point else None
