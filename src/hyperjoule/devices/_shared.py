"""One long-lived meter per device, answering any number of concurrent, keyed windows.

A device meter (RAPL package, a set of GPUs, a replaying fake) measures one window at a
time. :class:`SharedMeter` keeps it measuring in *segments*: whenever a keyed window
opens or closes, the current segment ends and the next begins, so within a segment the
set of open windows is fixed. Each segment's energy is split between the windows open
in it by their measured share (CPU time of each window's process groups), so the shares
of a segment add up to the device's energy over it, and a study that sums its runs
counts each device once. A window alone for its whole life is ``exclusive``; one that
shared a segment is ``apportioned``, with its share and basis in the record.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hyperjoule.devices._procfs import group_cpu_s
from hyperjoule.meters import Meter, MeterReading, RunUsage
from hyperjoule.records import METHODS, Attribution, EnergyComponent, PowerBlock

__all__ = ["SharedMeter"]

logger = logging.getLogger(__name__)

CpuReader = Callable[[Iterable[int]], float]
"""Reads the CPU time of process groups, in seconds (procfs by default)."""


@dataclass
class _Part:
    """What one window got from one segment."""

    reading: MeterReading
    share: float
    basis: str
    windows: int  # windows open in the segment
    offset_s: float  # segment start relative to the window's start
    segment: _Segment

    @property
    def directory(self) -> Path:
        return self.segment.directory


@dataclass
class _Window:
    run_dir: Path
    opened_s: float
    pgids: set[int] = field(default_factory=set)
    cpu_s: float = 0.0  # highest CPU time seen (exited processes take theirs along)
    cpu_at_segment_s: float = 0.0
    parts: list[_Part] = field(default_factory=list)


@dataclass
class _Segment:
    started_s: float
    directory: Path
    keys: list[str]
    refs: int = 0  # windows that still need its files


class SharedMeter:
    """Answers concurrent keyed windows from one device meter (see the module docstring).

    Args:
        meter: The device meter; this object owns its windows from now on.
        scratch_dir: Where segment timelines are written before they are copied into
            each window's run directory.
        cpu_reader: CPU time of process groups in seconds (tests pass a fake).
    """

    def __init__(self, meter: Meter, scratch_dir: Path, cpu_reader: CpuReader = group_cpu_s):
        self.meter = meter
        self.name = meter.name
        self.components = meter.components
        self._scratch = scratch_dir
        self._cpu = cpu_reader
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._segment: _Segment | None = None
        self._segments = 0

    @property
    def open_keys(self) -> list[str]:
        """Keys of the windows open now."""
        with self._lock:
            return list(self._windows)

    def open(self, key: str, run_dir: Path) -> None:
        """Open the window ``key`` for the run whose directory is ``run_dir``.

        Raises:
            RuntimeError: ``key`` is already open.
        """
        with self._lock:
            if key in self._windows:
                raise RuntimeError(f"meter {self.name!r}: window {key!r} is already open")
            now_s = time.monotonic()
            self._end_segment(now_s)
            self._windows[key] = _Window(Path(run_dir), now_s)
            self._begin_segment(now_s)

    def attach(self, key: str, pgid: int) -> None:
        """Count the CPU time of process group ``pgid`` as window ``key``'s."""
        with self._lock:
            window = self._windows.get(key)
            if window is not None:
                window.pgids.add(pgid)

    def close(self, key: str, usage: RunUsage) -> MeterReading:
        """Close window ``key``; return its share of the device's energy over it.

        ``usage`` is the run's own duration and CPU time (exact, from ``wait4``).

        Raises:
            RuntimeError: ``key`` is not open.
        """
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                raise RuntimeError(f"meter {self.name!r}: window {key!r} is not open")
            self._end_segment(time.monotonic(), closing=(key, usage))
            del self._windows[key]
            self._begin_segment(time.monotonic())
        return self._reading(window)

    def abort(self, key: str) -> None:
        """Drop window ``key`` without a reading (the attempt never started)."""
        with self._lock:
            if key not in self._windows:
                return
            self._end_segment(time.monotonic())
            window = self._windows.pop(key)
            self._begin_segment(time.monotonic())
        _remove_parts(window.parts)

    def close_all(self) -> None:
        """End the open segment and drop every window (the node is shutting down)."""
        with self._lock:
            if self._segment is not None:
                self.meter.close()
                self._segment = None
            for window in self._windows.values():
                _remove_parts(window.parts)
            self._windows.clear()

    def _begin_segment(self, now_s: float) -> None:
        if not self._windows:
            return
        self._segments += 1
        directory = self._scratch / f"{self.name}-{id(self):x}-{self._segments}"
        directory.mkdir(parents=True, exist_ok=True)
        keys = list(self._windows)
        if len(keys) > 1:
            # Process groups only matter for splitting; a lone window needs no /proc scan.
            self._refresh_cpu(keys)
        for key in keys:
            window = self._windows[key]
            window.cpu_at_segment_s = window.cpu_s
        self._segment = _Segment(now_s, directory, keys)
        self.meter.start(directory)

    def _refresh_cpu(self, keys: Iterable[str]) -> None:
        for key in keys:
            window = self._windows[key]
            if window.pgids:
                window.cpu_s = max(window.cpu_s, self._cpu(window.pgids))

    def _end_segment(self, now_s: float, closing: tuple[str, RunUsage] | None = None) -> None:
        segment = self._segment
        if segment is None:
            return
        self._segment = None
        keys = segment.keys
        if len(keys) > 1:
            self._refresh_cpu(keys)
        closing_key = closing[0] if closing is not None else None
        if closing is not None and closing[1].cpu_time_s is not None:
            window = self._windows[closing[0]]
            window.cpu_s = max(window.cpu_s, closing[1].cpu_time_s)
        deltas = {
            k: max(0.0, self._windows[k].cpu_s - self._windows[k].cpu_at_segment_s) for k in keys
        }
        alone_whole = (
            closing is not None
            and keys == [closing_key]
            and self._windows[closing[0]].opened_s == segment.started_s
        )
        if alone_whole and closing is not None:
            # The window's own figures are exact: pass them on unchanged.
            usage = closing[1]
        else:
            usage = RunUsage(duration_s=now_s - segment.started_s, cpu_time_s=sum(deltas.values()))
        reading = self.meter.stop(usage)
        total_cpu_s = sum(deltas.values())
        for key in keys:
            window = self._windows[key]
            if len(keys) == 1:
                share, basis = 1.0, "alone"
            elif total_cpu_s > 0:
                share, basis = deltas[key] / total_cpu_s, "cpu_time"
            else:
                share, basis = 1.0 / len(keys), "equal (no CPU time measured)"
            window.parts.append(
                _Part(
                    reading, share, basis, len(keys), segment.started_s - window.opened_s, segment
                )
            )
            segment.refs += 1

    def _reading(self, window: _Window) -> MeterReading:
        components: dict[str, EnergyComponent] = {}
        for name in self.components:
            components[name] = _combine(name, window.parts)
        files = _merge_files(window.parts, window.run_dir)
        power = _merge_power([p.reading.power for p in window.parts if p.reading.power])
        _remove_parts(window.parts)
        return MeterReading(components, power=power, files=files)


def _combine(name: str, parts: list[_Part]) -> EnergyComponent:
    """One window's component from its parts: the sum of its shares of each segment."""
    comps = [(p, p.reading.components[name]) for p in parts if name in p.reading.components]
    if not comps:
        return EnergyComponent.unavailable("no segment of the window was measured")
    missing = [c.reason for _, c in comps if c.energy_j is None]
    if missing:
        return EnergyComponent.unavailable("; ".join(dict.fromkeys(r for r in missing if r)))
    energy_j = sum(p.share * (c.energy_j or 0.0) for p, c in comps)
    device_j = sum(c.energy_j or 0.0 for _, c in comps)
    method = max((c.method for _, c in comps), key=METHODS.index)
    devices = list(dict.fromkeys(d for _, c in comps for d in c.devices))
    first = comps[0][1]
    shared = any(p.windows > 1 for p, _ in comps)
    reasons = list(dict.fromkeys(c.reason for _, c in comps if c.reason))
    if not shared:
        combined = any(c.attribution == "combined" for _, c in comps)
        attribution: Attribution = "combined" if combined else "exclusive"
        return EnergyComponent(
            energy_j=energy_j,
            method=method,
            devices=devices,
            attribution=attribution,
            reason="; ".join(reasons) or None,
            sampling_period_s=first.sampling_period_s,
            wraps=sum(c.wraps for _, c in comps),
        )
    share = energy_j / device_j if device_j > 0 else sum(p.share for p, _ in comps) / len(comps)
    bases = sorted({p.basis for p, _ in comps if p.windows > 1})
    concurrent = max(p.windows for p, _ in comps)
    note = (
        f"apportioned: {share:.1%} of {device_j:.1f} J the device used during the run, "
        f"split by {', '.join(bases)} among up to {concurrent} concurrent runs"
    )
    return EnergyComponent(
        energy_j=energy_j,
        method=method,
        devices=devices,
        attribution="apportioned",
        reason="; ".join([*reasons, note]),
        sampling_period_s=first.sampling_period_s,
        wraps=sum(c.wraps for _, c in comps),
        share=share,
        share_basis=", ".join(bases),
        device_energy_j=device_j,
    )


def _merge_power(blocks: list[PowerBlock]) -> PowerBlock | None:
    """GPU power over the whole window from its segments (device-level, not split)."""
    if not blocks:
        return None
    if len(blocks) == 1:
        return blocks[0]
    with_data = [b for b in blocks if b.gpu_avg_w is not None and (b.samples or 0) > 0]
    if not with_data:
        return blocks[-1]
    samples = sum(b.samples or 0 for b in with_data)

    def mean(attr: str) -> float | None:
        pairs: list[tuple[float, int]] = [
            (value, b.samples or 0) for b in with_data if (value := getattr(b, attr)) is not None
        ]
        weight = sum(n for _, n in pairs)
        return sum(v * n for v, n in pairs) / weight if weight else None

    def extreme(attr: str, pick: Callable[[Iterable[float]], float]) -> float | None:
        values = [getattr(b, attr) for b in with_data if getattr(b, attr) is not None]
        return pick(values) if values else None

    return PowerBlock(
        gpu_avg_w=mean("gpu_avg_w"),
        gpu_max_w=extreme("gpu_max_w", max),
        gpu_min_w=extreme("gpu_min_w", min),
        gpu_temp_avg_c=mean("gpu_temp_avg_c"),
        gpu_temp_max_c=extreme("gpu_temp_max_c", max),
        gpu_util_avg_pct=mean("gpu_util_avg_pct"),
        gpu_util_max_pct=extreme("gpu_util_max_pct", max),
        samples=samples,
        sampling_period_s=with_data[0].sampling_period_s,
    )


def _merge_files(parts: list[_Part], run_dir: Path) -> list[str]:
    """Concatenate each segment's timeline files into the window's run directory.

    Timelines count ``time_s`` from their segment's start; the window's copy counts from
    the window's start, so segments line up.
    """
    names = list(dict.fromkeys(f for p in parts for f in p.reading.files))
    written: list[str] = []
    for relative in names:
        target = run_dir / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w", encoding="utf-8") as out:
                header_done = False
                for part in parts:
                    source = part.directory / relative
                    if relative not in part.reading.files or not source.is_file():
                        continue
                    with open(source, encoding="utf-8") as src:
                        header = src.readline()
                        if not header_done:
                            out.write(header)
                            header_done = True
                        shift = header.startswith("time_s") and part.offset_s > 0
                        for line in src:
                            out.write(_shift_time(line, part.offset_s) if shift else line)
            written.append(relative)
        except OSError as e:
            logger.warning("cannot write the timeline %s: %s", target, e)
    return written


def _shift_time(line: str, offset_s: float) -> str:
    head, sep, rest = line.partition(",")
    try:
        return f"{float(head) + offset_s:.3f}{sep}{rest}"
    except ValueError:
        return line


def _remove_parts(parts: list[_Part]) -> None:
    """Release a finished window's segments; a segment's files go with its last window."""
    for part in parts:
        part.segment.refs -= 1
        if part.segment.refs <= 0:
            shutil.rmtree(part.segment.directory, ignore_errors=True)
