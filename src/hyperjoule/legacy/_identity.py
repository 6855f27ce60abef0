"""Which old descriptions are the same run, and what the run then says.

The lab's files describe one run several times: its ``experiment.json``, a row of its
session's ``summary.csv`` (timestamp written a fraction of a millisecond later), rows of
``raw_data.csv`` (sometimes twice, under a stage-prefixed id such as
``default__MRT-OAST_default_001``). A run is identified by what it is: the same target
and model, started within :data:`TIME_TOLERANCE_S` (or in the same second, when one
description only gives seconds), with no hyperparameter that both descriptions give set
to different values. Whatever ids the descriptions carry are kept as aliases.

Descriptions are merged in source order (see :func:`source_rank`): each field comes from
the first description that has it; a later description with a different value is a
:class:`Conflict`, listed with the source that won.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hyperjoule.errors import ConfigError
from hyperjoule.legacy._formats import parse_number
from hyperjoule.legacy._registry import DEFAULT_MODEL
from hyperjoule.legacy._results import LegacyRun

__all__ = [
    "TIME_TOLERANCE_S",
    "Conflict",
    "Duplicate",
    "MergedRun",
    "group_descriptions",
    "merge_descriptions",
    "source_rank",
    "utc_time",
    "zone_reader",
]

TIME_TOLERANCE_S = 0.005
"""Descriptions of one run may disagree on its start by this much (files were written at
different moments, up to about a millisecond apart)."""

_REL_TOL = 1e-4  # CSVs rounded some figures; beyond this two values disagree


@dataclass(frozen=True)
class Duplicate:
    """A description merged into a run described already, and why it is the same run."""

    run: str
    source: str
    reason: str


@dataclass(frozen=True)
class Conflict:
    """Two descriptions of one run that disagree on a field.

    Attributes:
        run: The run (``target/model@time``).
        field: The field (``duration_s``, ``metrics.test_accuracy``, ``energy.gpu_j``).
        kept: ``(source, value)`` that the record holds.
        other: ``(source, value)`` that lost.
    """

    run: str
    field: str
    kept: tuple[str, str]
    other: tuple[str, str]


@dataclass
class MergedRun:
    """One run: its merged description and every description that went into it."""

    run: LegacyRun
    descriptions: list[LegacyRun]
    aliases: list[str]
    duplicates: list[Duplicate]
    conflicts: list[Conflict]
    utc: datetime | None


def utc_time(text: str, zone: Callable[[datetime], datetime]) -> tuple[datetime | None, bool]:
    """An old timestamp in UTC, and whether it gave whole seconds only.

    Args:
        text: The timestamp as written (ISO with ``T`` or space, or ``YYYYmmdd_HHMMSS``).
        zone: Attaches the local zone to a naive datetime (the lab wrote local times);
            a timestamp that states its own offset keeps it.
    """
    raw = text.strip()
    parsed: datetime | None = None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        try:
            parsed = datetime.strptime(raw, "%Y%m%d_%H%M%S")
        except ValueError:
            return None, False
    if parsed.tzinfo is None:
        parsed = zone(parsed)
    seconds_only = parsed.microsecond == 0 and "." not in raw
    return parsed.astimezone(timezone.utc), seconds_only


def source_rank(path: Path, prefer: Sequence[str]) -> tuple[int, int]:
    """Order of sources when descriptions disagree.

    Preferred names first, then experiment.json, a session's summary.csv, other CSVs.
    """
    text = str(path)
    for i, wanted in enumerate(prefer):
        if path.name == wanted or text.endswith(wanted) or path.suffix == "." + wanted:
            return (0, i)
    default = {"experiment.json": 0, "summary.csv": 1}.get(path.name, 2)
    return (1, default)


def _model(run: LegacyRun) -> str | None:
    return None if run.model in (None, DEFAULT_MODEL) else run.model


def _same_value(a: Any, b: Any) -> bool:
    try:
        x, y = parse_number(a), parse_number(b)
    except ValueError:
        return str(a).strip().lower() == str(b).strip().lower()
    if x is None or y is None:
        return x is y
    return math.isclose(x, y, rel_tol=_REL_TOL, abs_tol=1e-12)


def _compatible(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(_same_value(a[k], b[k]) for k in a.keys() & b.keys())


def _close(a: tuple[datetime, bool], b: tuple[datetime, bool]) -> bool:
    (ta, whole_a), (tb, whole_b) = a, b
    if whole_a or whole_b:
        return ta.replace(microsecond=0) == tb.replace(microsecond=0)
    return abs((ta - tb).total_seconds()) <= TIME_TOLERANCE_S


def group_descriptions(
    runs: Sequence[LegacyRun], zone: Callable[[datetime], datetime]
) -> list[tuple[list[LegacyRun], datetime | None]]:
    """Descriptions grouped into runs (each group with its earliest UTC start)."""
    timed: dict[tuple[str | None, str | None], list[tuple[datetime, bool, LegacyRun]]] = {}
    untimed: dict[tuple[str, str], list[LegacyRun]] = {}
    for run in runs:
        when, whole = utc_time(run.timestamp_text or run.timestamp, zone)
        if when is None:
            untimed.setdefault((run.experiment_id, run.timestamp), []).append(run)
        else:
            timed.setdefault((run.repository, _model(run)), []).append((when, whole, run))
    groups: list[tuple[list[LegacyRun], datetime | None]] = [
        (members, None) for members in untimed.values()
    ]
    for items in timed.values():
        items.sort(key=lambda item: item[0])
        # Each open group: its first time, whether whole seconds, union of hyperparameters.
        open_groups: list[tuple[tuple[datetime, bool], dict[str, Any], list[LegacyRun]]] = []
        for when, whole, run in items:
            match = None
            for anchor, values, members in reversed(open_groups):
                if (when - anchor[0]).total_seconds() > 1.0:
                    break  # groups are in time order; older ones cannot match
                if _close(anchor, (when, whole)) and _compatible(values, run.hyperparameters):
                    match = (values, members)
                    break
            if match is None:
                open_groups.append(((when, whole), dict(run.hyperparameters), [run]))
            else:
                for key, value in run.hyperparameters.items():
                    match[0].setdefault(key, value)
                match[1].append(run)
        groups += [(members, anchor[0]) for anchor, _, members in open_groups]
    return groups


def _text(value: Any) -> str:
    return "—" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))


def _reason(first: LegacyRun, other: LegacyRun, first_utc: datetime | None, zone: Any) -> str:
    if other.experiment_id != first.experiment_id:
        return f"id variant {other.experiment_id!r} of {first.experiment_id!r}"
    if other.timestamp != first.timestamp and first_utc is not None:
        when, _ = utc_time(other.timestamp_text or other.timestamp, zone)
        if when is not None:
            ms = abs((when - first_utc).total_seconds()) * 1000
            return f"same id, timestamps {ms:.3f} ms apart"
    if other.sources[0] == first.sources[0]:
        return "repeated row"
    return "described again in another file"


def merge_descriptions(
    members: list[LegacyRun],
    prefer: Sequence[str],
    zone: Callable[[datetime], datetime],
) -> MergedRun:
    """Merge one run's descriptions, reporting duplicates (why) and conflicts (who won)."""
    ordered = sorted(
        members,
        key=lambda r: (source_rank(r.sources[0], prefer), str(r.sources[0]), r.line or 0),
    )
    first = ordered[0]
    merged = replace(
        first,
        sources=list(first.sources),
        hyperparameters=dict(first.hyperparameters),
        metrics=dict(first.metrics),
        energy=dict(first.energy),
    )
    first_utc, _ = utc_time(first.timestamp_text or first.timestamp, zone)
    ids = sorted({r.experiment_id for r in ordered}, key=lambda i: (len(i), i))
    # The shortest id is the lab's own; longer variants carry stage prefixes.
    merged.experiment_id = ids[0]
    label = f"{first.repository}/{_model(first) or '-'}@{first.timestamp}"
    duplicates: list[Duplicate] = []
    conflicts: list[Conflict] = []
    seen: set[tuple[str, int | None, str, str]] = set()
    kept: list[LegacyRun] = []

    def where(run: LegacyRun) -> str:
        return f"{run.sources[0]}" + (f":{run.line}" if run.line else "")

    for other in ordered:
        ident = (str(other.sources[0]), other.line, other.experiment_id, other.timestamp)
        if ident in seen:
            continue  # the same row stored by an earlier import
        seen.add(ident)
        kept.append(other)
        if other is first:
            continue
        duplicates.append(Duplicate(label, where(other), _reason(first, other, first_utc, zone)))
        merged.sources += [s for s in other.sources if s not in merged.sources]
        for name in ("session", "run_dir", "mode", "attribution", "error", "background"):
            if getattr(merged, name) is None:
                setattr(merged, name, getattr(other, name))
        merged.nested = merged.nested or other.nested
        for key, value in other.hyperparameters.items():
            merged.hyperparameters.setdefault(key, value)
        for name in ("success", "duration_s", "retries"):
            mine, theirs = getattr(merged, name), getattr(other, name)
            if mine is None:
                setattr(merged, name, theirs)
            elif theirs is not None and not _same_value(mine, theirs):
                conflicts.append(
                    Conflict(
                        label, name, (where(first), _text(mine)), (where(other), _text(theirs))
                    )
                )
        for block in ("metrics", "energy"):
            mine_block: dict[str, Any] = getattr(merged, block)
            for key, theirs in getattr(other, block).items():
                mine = mine_block.get(key)
                if mine is None:
                    mine_block[key] = theirs
                elif theirs is not None and not _same_value(mine, theirs):
                    conflicts.append(
                        Conflict(
                            label,
                            f"{block}.{key}",
                            (where(first), _text(mine)),
                            (where(other), _text(theirs)),
                        )
                    )
    aliases = [i for i in ids if i != merged.experiment_id]
    return MergedRun(merged, kept, aliases, duplicates, conflicts, first_utc)


def zone_reader(name: str | None) -> tuple[Callable[[datetime], datetime], str]:
    """How naive old timestamps get their zone, and its name for records and reports.

    Raises:
        ConfigError: ``name`` is not a known IANA time zone.
    """
    if name is None:
        local = datetime.now().astimezone().tzname() or "local"
        # astimezone() on a naive datetime applies this machine's rules, DST included.
        return (lambda dt: dt.astimezone()), f"this machine's local time ({local})"
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            "--timezone",
            "",
            f"unknown time zone {name!r}; give an IANA name such as Asia/Shanghai, "
            "Europe/Berlin or UTC",
        ) from None
    return (lambda dt: dt.replace(tzinfo=zone)), name
