"""After a failure: which finished slots run again (``--rerun``), and which targets changed.

A slot's result is its latest finished record. ``--rerun failed,timeout`` puts the slots
whose result has one of those statuses back into the plan; the earlier records stay
(the energy they spent is history), the new record becomes the slot's result and names
the one it replaces (``rerun_of``). Each record keeps the fingerprint of its target's
definition and code version, so ``plan`` and ``run`` can say which targets changed since
the study's runs were recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hyperjoule.config import Target, TargetFingerprint, target_fingerprint
from hyperjoule.errors import HyperjouleError
from hyperjoule.provenance import collect_target_version
from hyperjoule.records import RunRecord, RunStatus

__all__ = ["RERUN_STATUSES", "SlotResult", "parse_rerun", "slot_results", "target_changes"]

RERUN_STATUSES = tuple(s for s in RunStatus if s.finished)
"""Statuses ``--rerun`` accepts: the final ones (interrupted runs resume by themselves)."""


def parse_rerun(text: str | None) -> frozenset[RunStatus]:
    """Parse ``--rerun failed,timeout``.

    Raises:
        HyperjouleError: A name is not a final status (nothing is written).
    """
    if text is None:
        return frozenset()
    names = [n.strip() for n in text.split(",") if n.strip()]
    allowed = {s.value: s for s in RERUN_STATUSES}
    choices = ", ".join(allowed)
    if not names:
        raise HyperjouleError(f"--rerun: no status given; list some of {choices}")
    for name in names:
        if name not in allowed:
            why = (
                "interrupted runs are resumed without --rerun"
                if name in (RunStatus.INTERRUPTED.value, RunStatus.RUNNING.value)
                else "unknown status"
            )
            raise HyperjouleError(f"--rerun: '{name}': {why}; choose from {choices}")
    return frozenset(allowed[n] for n in names)


@dataclass(frozen=True)
class SlotResult:
    """The few fields of a slot's result that the plan needs (not the whole record).

    A study may hold 100,000 records; the plan keeps one of these per slot instead.
    """

    run_id: str
    target: str
    status: RunStatus
    fingerprint: dict[str, Any] | None
    git_commit: str | None

    @classmethod
    def of(cls, record: RunRecord) -> SlotResult:
        """Keep what the plan needs of ``record``."""
        code = record.provenance.get("target_code") or {}
        return cls(
            record.run_id,
            record.target,
            record.status,
            record.provenance.get("target_fingerprint") or None,
            code.get("git_commit") if isinstance(code, dict) else None,
        )


def slot_results(records: Iterable[RunRecord]) -> dict[tuple[str, str], SlotResult]:
    """The result of each finished slot: its latest finished record.

    Args:
        records: A study's records, oldest first (streamed; only results are kept).
    """
    latest: dict[tuple[str, str], SlotResult] = {}
    for record in records:
        if record.status.finished:
            latest[(record.slot_id, record.dedup_key)] = SlotResult.of(record)
    return latest


def target_changes(
    targets: Mapping[str, Target], used: Iterable[str], results: Iterable[SlotResult]
) -> list[str]:
    """One line per used target whose definition or code differs from its slots' results.

    Only each slot's result counts (a record replaced by ``--rerun`` is history), so a
    target fixed and rerun is no longer reported.

    Args:
        targets: The study's targets as they are now.
        used: Names of the targets the study uses.
        results: The study's slot results (see :func:`slot_results`).
    """
    by_target: dict[str, list[SlotResult]] = {}
    for result in results:
        by_target.setdefault(result.target, []).append(result)
    lines: list[str] = []
    for name in used:
        own = by_target.get(name, [])
        if not own:
            continue
        now = target_fingerprint(targets[name])
        commit = collect_target_version(targets[name].workdir).get("git_commit")
        changed: list[str] = []
        stale = 0
        for result in own:
            if result.fingerprint is None:
                continue  # recorded before fingerprints existed (or imported): unknown
            diff = now.changes_since(TargetFingerprint.from_dict(result.fingerprint))
            if result.git_commit != commit:
                diff.append("git commit")
            if diff:
                stale += 1
                changed += [d for d in diff if d not in changed]
        if stale:
            lines.append(
                f"target {name} changed since {stale} of its {len(own)} finished run(s) in "
                f"this study ({', '.join(changed)}); they count as done: "
                "--rerun failed,... runs the slots with those statuses again"
            )
    return lines
