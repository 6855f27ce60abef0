"""Per-process accounting from ``/proc``: CPU time of process groups.

The one place hyperjoule reads per-process CPU time while processes run; used to
apportion shared device energy between concurrent runs and to measure the load of a
parallel run's background.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CLK_TCK", "group_cpu_s", "group_cpu_ticks", "groups_cpu_ticks"]

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
"""Kernel clock ticks per second (the unit of CPU times in ``/proc/<pid>/stat``)."""

PROC_ROOT = Path("/proc")


def groups_cpu_ticks(pgids: Iterable[int], proc_root: Path = PROC_ROOT) -> dict[int, int]:
    """CPU time (user + system, including reaped children) of process groups, in ticks.

    One pass over ``/proc`` answers every group (reading ``/proc`` is the cost, not the
    arithmetic). Groups without a live process are 0: an exited process takes its
    ticks along, so callers keep the last value they saw.
    """
    wanted = {int(p) for p in pgids if p > 0}
    totals = dict.fromkeys(wanted, 0)
    if not wanted:
        return totals
    try:
        entries = os.listdir(proc_root)
    except OSError:
        return totals
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(proc_root / name / "stat", "rb") as f:
                text = f.read().decode("ascii", "replace")
        except OSError:
            continue  # exited between listing and reading
        fields = text[text.rfind(")") + 2 :].split()
        # fields[0] is state (stat field 3): pgrp is field 5, utime..cstime fields 14-17.
        if len(fields) > 14:
            pgrp = int(fields[2])
            if pgrp in wanted:
                totals[pgrp] += sum(int(f) for f in fields[11:15])
    return totals


def group_cpu_ticks(pgid: int, proc_root: Path = PROC_ROOT) -> int:
    """CPU time of one process group, in ticks (see :func:`groups_cpu_ticks`)."""
    return groups_cpu_ticks([pgid], proc_root).get(pgid, 0)


def group_cpu_s(pgids: Iterable[int], proc_root: Path = PROC_ROOT) -> float:
    """CPU time of the live processes of ``pgids`` together, in seconds."""
    return sum(groups_cpu_ticks(pgids, proc_root).values()) / CLK_TCK
