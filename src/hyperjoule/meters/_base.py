"""The meter contract: one energy-measurement window around each run, and merging readings."""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hyperjoule.records import (
    ATTRIBUTIONS,
    ENERGY_COMPONENTS,
    METHODS,
    EnergyBlock,
    EnergyComponent,
    PowerBlock,
)

__all__ = [
    "Meter",
    "MeterReading",
    "ProbeResult",
    "RunUsage",
    "merge_readings",
    "readings_so_far",
    "unavailable_reading",
]

logger = logging.getLogger(__name__)

NO_GPU_METER_REASON = "no GPU meter"


@dataclass(frozen=True)
class ProbeResult:
    """What a probe found about one kind of meter (for ``hyperjoule doctor`` and logs).

    Attributes:
        name: Meter kind (``nvml``, ``rapl``, ``estimate``).
        available: Whether the meter can measure on this machine.
        detail: What was found, or why it cannot be used and how to fix that.
    """

    name: str
    available: bool
    detail: str


@dataclass(frozen=True)
class RunUsage:
    """What the runner knows about a finished run, handed to :meth:`Meter.stop`.

    Attributes:
        duration_s: Wall-clock duration of the run, in seconds.
        cpu_time_s: User + system CPU time of the run's process tree, in seconds;
            None when it could not be measured.
    """

    duration_s: float
    cpu_time_s: float | None = None


@dataclass
class MeterReading:
    """What one meter measured over one window.

    Attributes:
        components: One entry per energy component the meter covers (keys from
            :data:`~hyperjoule.records.ENERGY_COMPONENTS`); components it does not
            cover are absent.
        power: GPU power/temperature/utilisation summary, from meters that sample GPUs.
        files: Files the meter wrote, relative to the run directory (``energy/gpu.csv``).

    Raises:
        ValueError: A component is unknown or breaks the record's rules (``energy_j`` is
            None exactly when unavailable, an unavailable one has a reason, energies are
            finite and not negative).
    """

    components: dict[str, EnergyComponent]
    power: PowerBlock | None = None
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name, comp in self.components.items():
            _check_component(name, comp)


def _check_component(name: str, comp: EnergyComponent) -> None:
    if name not in ENERGY_COMPONENTS:
        raise ValueError(f"unknown energy component {name!r}; expected one of {ENERGY_COMPONENTS}")
    if comp.method not in METHODS:
        raise ValueError(f"{name}: unknown method {comp.method!r}; expected one of {METHODS}")
    if comp.attribution not in ATTRIBUTIONS:
        raise ValueError(f"{name}: unknown attribution {comp.attribution!r}")
    if (comp.energy_j is None) != (comp.method == "unavailable"):
        raise ValueError(f"{name}: energy_j must be None exactly when the method is unavailable")
    if comp.energy_j is None and not comp.reason:
        raise ValueError(f"{name}: an unavailable component needs a reason")
    # `not x >= 0` also rejects NaN.
    if comp.energy_j is not None and not comp.energy_j >= 0.0:
        raise ValueError(f"{name}: energy_j must be a non-negative number, got {comp.energy_j}")


def unavailable_reading(components: Sequence[str], reason: str) -> MeterReading:
    """A reading in which every one of ``components`` is unavailable for ``reason``."""
    return MeterReading({name: EnergyComponent.unavailable(reason) for name in components})


def readings_so_far(meters: Sequence[Meter], usage: RunUsage) -> list[MeterReading]:
    """Each meter's reading of its open window so far (:meth:`Meter.peek`).

    A meter that cannot tell before its window closes reports its components
    unavailable, with that reason.
    """
    readings = []
    for meter in meters:
        reading = meter.peek(usage)
        if reading is None:
            why = f"meter {meter.name!r} gives no reading before its window closes"
            reading = unavailable_reading(meter.components, why)
        readings.append(reading)
    return readings


class Meter(abc.ABC):
    """Measures the energy of some components over a window around one run.

    The contract every implementation keeps (checked by ``tests/meters/contract.py``):

    * ``name`` names the meter in records and logs; ``components`` lists the energy
      components (from ``ENERGY_COMPONENTS``) its readings cover.
    * ``start(run_dir)`` opens a window just before the training process starts. It may
      start a sampling thread and write time series into ``run_dir / "energy"``.
    * ``stop(usage)`` closes the window right after the process ended and returns a
      :class:`MeterReading` for exactly the covered components. It always returns a
      reading and never raises for a sensor failure: a component the meter failed to
      measure comes back ``unavailable`` with the reason. Components it does not cover
      are absent, never zero.
    * ``stop`` without an open window, and ``start`` while one is open, raise
      ``RuntimeError`` (a bug in the caller, not a sensor problem).
    * Windows can be opened again after ``stop``, any number of times.
    * ``peek(usage)`` returns the energy of the open window so far without closing it
      (for checkpoints of long runs), or None when the meter cannot tell before the
      window closes; it never raises for a sensor failure.
    * ``close()`` ends an open window, releases handles and threads; it is idempotent,
      and ``start`` after ``close`` raises ``RuntimeError``.

    Implementations provide :meth:`_open_window` and :meth:`_close_window`, and
    optionally :meth:`_abort_window` and :meth:`_release`; this class enforces the
    window state and turns an unexpected sensor exception into unavailable components.
    """

    name: str
    components: tuple[str, ...]

    _window_open: bool = False
    _start_error: str | None = None
    _closed: bool = False

    def start(self, run_dir: Path) -> None:
        """Open a measurement window for the run whose directory is ``run_dir``.

        Raises:
            RuntimeError: A window is already open, or the meter is closed.
        """
        if self._closed:
            raise RuntimeError(f"meter {self.name!r} is closed; create a new one")
        if self._window_open:
            raise RuntimeError(f"meter {self.name!r}: start() called twice without stop()")
        self._window_open = True
        self._start_error = None
        try:
            self._open_window(Path(run_dir))
        except Exception as e:
            # A sensor that fails at start must not stop the training run: it is
            # reported as unavailable when the window closes.
            logger.warning("meter %s could not open its window: %s", self.name, e, exc_info=True)
            self._start_error = f"{self.name} meter failed at start: {e}"

    def stop(self, usage: RunUsage) -> MeterReading:
        """Close the window and return what was measured over it.

        Raises:
            RuntimeError: No window is open.
        """
        if not self._window_open:
            raise RuntimeError(f"meter {self.name!r}: stop() called without start()")
        self._window_open = False
        if self._start_error is not None:
            self._safe_abort()
            return unavailable_reading(self.components, self._start_error)
        try:
            reading = self._close_window(usage)
        except Exception as e:
            logger.warning("meter %s failed to read its sensors: %s", self.name, e, exc_info=True)
            self._safe_abort()
            return unavailable_reading(self.components, f"{self.name} meter failed: {e}")
        extra = set(reading.components) - set(self.components)
        if extra:
            raise RuntimeError(
                f"meter {self.name!r} reported components it does not cover: {extra}"
            )
        return reading

    def peek(self, usage: RunUsage) -> MeterReading | None:
        """Energy of the open window so far, the window staying open.

        Args:
            usage: Duration and CPU time of the run so far.

        Returns:
            A reading like :meth:`stop`'s, or None when no window is open, it failed to
            open, the meter cannot read before the window closes, or reading failed.
        """
        if not self._window_open or self._start_error is not None:
            return None
        try:
            return self._peek_window(usage)
        except Exception as e:
            logger.debug("meter %s: no reading so far: %s", self.name, e, exc_info=True)
            return None

    def close(self) -> None:
        """Release handles and threads; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._window_open:
            self._window_open = False
            self._safe_abort()
        self._release()

    def _safe_abort(self) -> None:
        try:
            self._abort_window()
        except Exception as e:
            logger.debug("meter %s: abort failed: %s", self.name, e, exc_info=True)

    @abc.abstractmethod
    def _open_window(self, run_dir: Path) -> None:
        """Take start readings; start samplers. May raise: reported at stop."""

    @abc.abstractmethod
    def _close_window(self, usage: RunUsage) -> MeterReading:
        """Stop samplers, take end readings and return the reading.

        May raise: every covered component is then reported unavailable.
        """

    def _peek_window(self, usage: RunUsage) -> MeterReading | None:
        """The window's reading so far (None: this meter cannot tell before it closes)."""
        return None

    def _abort_window(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Stop samplers of an open window without reading (close mid-window, failures)."""

    def _release(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Release library handles; called once by :meth:`close`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, components={self.components!r})"


def merge_readings(readings: Sequence[MeterReading]) -> tuple[EnergyBlock, PowerBlock]:
    """Combine the readings of one window into the record's energy and power blocks.

    Per component the most trustworthy figure wins (``counter`` over ``integrated`` over
    ``estimated``; the first reading breaks ties). When every reading of a component is
    unavailable, the component stays unavailable with all distinct reasons joined.
    Components no reading covers are absent (the block reports them unavailable). The
    power block is the first one given, else empty with the reason ``no GPU meter``.
    """
    candidates: dict[str, list[EnergyComponent]] = {}
    for reading in readings:
        for name, comp in reading.components.items():
            candidates.setdefault(name, []).append(comp)
    components: dict[str, EnergyComponent] = {}
    for name in sorted(candidates, key=_component_order):
        options = candidates[name]
        best = min(options, key=lambda c: METHODS.index(c.method))
        if best.method == "unavailable":
            reasons = list(dict.fromkeys(c.reason for c in options if c.reason))
            best = EnergyComponent.unavailable("; ".join(reasons))
        components[name] = best
    power = next((r.power for r in readings if r.power is not None), None)
    if power is None:
        power = PowerBlock(reason=NO_GPU_METER_REASON)
    return EnergyBlock(components=components), power


def _component_order(name: str) -> int:
    return ENERGY_COMPONENTS.index(name) if name in ENERGY_COMPONENTS else len(ENERGY_COMPONENTS)
