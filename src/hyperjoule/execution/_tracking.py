"""The one thing the process layer tells the orphan watchdog: which groups are alive."""

from __future__ import annotations

from typing import Protocol

__all__ = ["GroupTracker", "NoTracker"]


class GroupTracker(Protocol):
    """Told every process group an attempt starts and reaps (the orphan watchdog)."""

    def track(self, pgid: int) -> None:
        """A process group started."""

    def untrack(self, pgid: int) -> None:
        """A process group ended and was reaped."""


class NoTracker:
    """A tracker that tracks nothing (no watchdog on this node)."""

    def track(self, pgid: int) -> None:
        """Ignore ``pgid``."""

    def untrack(self, pgid: int) -> None:
        """Ignore ``pgid``."""
