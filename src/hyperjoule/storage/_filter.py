"""Which stored runs to read: one filter, turned into SQL once for every reader."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["RunFilter"]


@dataclass(frozen=True)
class RunFilter:
    """Runs to read, by the indexed columns of the ``runs`` table (None: any).

    Attributes:
        study: Only runs of this study.
        statuses: Only runs with one of these statuses (``failed``).
        targets: Only runs of these targets.
        models: Only runs of these models.
        modes: Only runs of these modes (``search``).
        since: Only runs started at or after this ISO 8601 UTC timestamp (the form
            :func:`~hyperjoule.storage.utc_timestamp` writes, so text order is time order).
    """

    study: str | None = None
    statuses: Sequence[str] | None = None
    targets: Sequence[str] | None = None
    models: Sequence[str] | None = None
    modes: Sequence[str] | None = None
    since: str | None = None

    def clauses(self) -> tuple[list[str], list[Any]]:
        """SQL conditions (to be joined with AND) and their parameters."""
        where: list[str] = []
        params: list[Any] = []
        if self.study is not None:
            where.append("study = ?")
            params.append(self.study)
        for column, values in (
            ("status", self.statuses),
            ("target", self.targets),
            ("model", self.models),
            ("mode", self.modes),
        ):
            if values is not None:
                # An empty list matches nothing (IN (NULL) is never true).
                where.append(f"{column} IN ({', '.join('?' for _ in values) or 'NULL'})")
                params += list(values)
        if self.since is not None:
            where.append("started_at >= ?")
            params.append(self.since)
        return where, params
