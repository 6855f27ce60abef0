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

from hyperjoule.config import Target, TargetFingerprint, target_fingerprint
from hyperjoule.errors import HyperjouleError
from hyperjoule.provenance import collect_target_version
from hyperjoule.records import RunRecord, RunStatus

__all__ = ["RERUN_STATUSES", "parse_rerun", "slot_results", "target_changes"]

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


def slot_results(records: Iterable[RunRecord]) -> dict[tuple[str, str], RunRecord]:
    """The result of each finished slot: its latest finished record.

    Args:
        records: A study's records, oldest first.
    """
    latest: dict[tuple[str, str], RunRecord] = {}
    for record in records:
        if record.status.finished:
            latest[(record.slot_id, record.dedup_key)] = record
    return latest


def target_changes(
    targets: Mapping[str, Target], used: Iterable[str], records: list[RunRecord]
) -> list[str]:
    """One line per used target whose definition or code differs from its slots' results.

    Only each slot's result counts (a record replaced by ``--rerun`` is history), so a
    target fixed and rerun is no longer reported.

    Args:
        targets: The study's targets as they are now.
        used: Names of the targets the study uses.
        records: The study's records, oldest first.
    """
    results = list(slot_results(records).values())
    lines: list[str] = []
    for name in used:
        own = [r for r in results if r.target == name]
        if not own:
            continue
        now = target_fingerprint(targets[name])
        commit = collect_target_version(targets[name].workdir).get("git_commit")
        changed: list[str] = []
        stale = 0
        for record in own:
            saved = record.provenance.get("target_fingerprint")
            if not saved:
                continue  # recorded before fingerprints existed (or imported): unknown
            diff = now.changes_since(TargetFingerprint.from_dict(saved))
            if (record.provenance.get("target_code") or {}).get("git_commit") != commit:
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
