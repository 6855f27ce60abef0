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
    """One line per used target whose definition or code changed since its last record.

    Args:
        targets: The study's targets as they are now.
        used: Names of the targets the study uses.
        records: The study's records, oldest first.
    """
    last: dict[str, RunRecord] = {}
    for earlier in records:
        if earlier.provenance.get("target_fingerprint"):
            last[earlier.target] = earlier
    lines: list[str] = []
    for name in used:
        record = last.get(name)
        if record is None:
            continue
        then = TargetFingerprint.from_dict(record.provenance["target_fingerprint"])
        changed = target_fingerprint(targets[name]).changes_since(then)
        then_commit = (record.provenance.get("target_code") or {}).get("git_commit")
        now_commit = collect_target_version(targets[name].workdir).get("git_commit")
        if then_commit != now_commit:
            changed.append("git commit")
        if not changed:
            continue
        runs = sum(1 for r in records if r.target == name and r.status.finished)
        lines.append(
            f"target {name} changed since this study's runs were recorded ({', '.join(changed)}); "
            f"its {runs} finished run(s) measured the earlier version and count as done "
            "(--rerun failed,... runs chosen ones again)"
        )
    return lines
