"""A periodic background sampler on monotonic time, and trapezoid integration of power."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

__all__ = ["PeriodicSampler", "trapezoid_energy_j"]

logger = logging.getLogger(__name__)


def trapezoid_energy_j(times_s: Sequence[float], powers_w: Sequence[float]) -> float:
    """Integrate power samples over time with the trapezoid rule.

    Args:
        times_s: Sample times in seconds, non-decreasing (monotonic clock).
        powers_w: Power at each time, in watts.

    Returns:
        Energy in joules over ``[times_s[0], times_s[-1]]``; 0.0 for fewer than two
        samples (an empty interval holds no energy).

    Raises:
        ValueError: The sequences differ in length or the times go backwards.
    """
    if len(times_s) != len(powers_w):
        raise ValueError(f"{len(times_s)} times but {len(powers_w)} power samples")
    energy_j = 0.0
    for i in range(1, len(times_s)):
        dt_s = times_s[i] - times_s[i - 1]
        if dt_s < 0:
            raise ValueError(f"sample times go backwards at index {i}")
        energy_j += 0.5 * (powers_w[i] + powers_w[i - 1]) * dt_s
    return energy_j


class PeriodicSampler:
    """Calls ``sample(now_s)`` every ``period_s`` seconds in a daemon thread.

    Ticks follow a fixed schedule on the monotonic clock (no drift from the time the
    callback takes); ticks missed because a callback ran long are skipped, not bunched.
    An exception in the callback is logged and sampling goes on: one bad read must not
    end a run's timeline.

    Args:
        period_s: Time between ticks, in seconds.
        sample: Called with the tick's ``time.monotonic()`` value.
        name: Thread name (shows in debuggers and logs).
    """

    def __init__(self, period_s: float, sample: Callable[[float], object], name: str) -> None:
        if not period_s > 0:
            raise ValueError(f"sampling period must be positive, got {period_s}")
        self.period_s = period_s
        self._sample = sample
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        """Start ticking; the first tick comes one period from now."""
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking and wait for an ongoing callback to finish; idempotent."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _loop(self) -> None:
        next_s = time.monotonic() + self.period_s
        while not self._stop.wait(max(0.0, next_s - time.monotonic())):
            now_s = time.monotonic()
            try:
                self._sample(now_s)
            except Exception:
                # Log the first failure loudly, then quietly: 10 Hz of tracebacks helps nobody.
                level = logging.DEBUG if self.failures else logging.ERROR
                logger.log(level, "sampler %s: sample failed", self._thread.name, exc_info=True)
                self.failures += 1
            next_s += self.period_s
            late_s = time.monotonic() - next_s
            if late_s > 0:
                next_s += (late_s // self.period_s + 1) * self.period_s


def open_timeline(path: Path, header: str) -> TextIO | None:
    """Open a timeline CSV (``energy/*.csv``) and write its header; None when impossible.

    The timeline is a by-product: energy is still measured without it, so failure to
    write it is a warning, not an error.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = path.open("w", encoding="utf-8")
    except OSError as e:
        logger.warning("cannot write the energy timeline %s: %s", path, e)
        return None
    stream.write(header + "\n")
    return stream


class SampledWindow:
    """The sampler thread and timeline file a sampling meter holds during a window."""

    _sampler: PeriodicSampler | None = None
    _timeline: TextIO | None = None

    def _stop_sampler(self) -> None:
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None

    def _close_timeline(self) -> None:
        if self._timeline is not None:
            self._timeline.close()
            self._timeline = None

    def _abort_window(self) -> None:
        self._stop_sampler()
        self._close_timeline()
