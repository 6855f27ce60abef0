"""Machine settings a study may change (the CPU governor), always restored afterwards.

The previous value of every CPU is recorded before the first write and written back when
the study ends, on Ctrl-C and on errors. Without permission (governor files are
root-only on most systems) the study stops with a message naming the fix, unless the
study allows running without the setting, in which case the record says so.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType
from typing import Any

from hyperjoule.config import SystemSettings
from hyperjoule.errors import PreflightError
from hyperjoule.execution._reaper import GroupReaper

__all__ = ["CPU_SYSFS_ROOT", "SystemKnobs", "refuse_or_skip"]

logger = logging.getLogger(__name__)

CPU_SYSFS_ROOT = Path("/sys/devices/system/cpu")


def refuse_or_skip(settings: SystemSettings, skipped: list[str], reason: str) -> None:
    """A machine setting the study asked for cannot be applied: stop, or note it and go on.

    Raises:
        PreflightError: Unless ``system.continue_without_permission`` is set; then the
            reason is logged once and added to ``skipped`` (for provenance).
    """
    if not settings.continue_without_permission:
        raise PreflightError(
            reason + ", or set system.continue_without_permission: true to run without it"
        )
    logger.warning("%s; continuing without it as the study allows", reason)
    if reason not in skipped:
        skipped.append(reason)


class SystemKnobs:
    """Applies a study's :class:`SystemSettings` for the duration of a ``with`` block.

    Attributes:
        applied: What was set (``{"cpu_governor": "performance"}``), for provenance.
        previous: Per-CPU previous governors, restored on exit.
        skipped: One line per setting that could not be applied, for provenance.
    """

    def __init__(
        self,
        settings: SystemSettings,
        cpu_root: Path = CPU_SYSFS_ROOT,
        reaper: GroupReaper | None = None,
    ) -> None:
        self.settings = settings
        self.cpu_root = cpu_root
        # The watchdog restores the settings should the runner be killed with SIGKILL.
        self.reaper = reaper
        self.applied: dict[str, Any] = {}
        self.previous: dict[Path, str] = {}
        self.skipped: list[str] = []

    def _governor_files(self) -> list[Path]:
        return sorted(self.cpu_root.glob("cpu[0-9]*/cpufreq/scaling_governor"))

    def check(self) -> None:
        """Refuse, before anything runs, a setting this machine cannot apply.

        Raises:
            PreflightError: Unknown governor, or no permission and the study does not
                allow running without it.
        """
        wanted = self.settings.cpu_governor
        if wanted is None:
            return
        files = self._governor_files()
        if not files:
            self._refuse(f"{self.cpu_root}: no cpufreq governors on this machine")
            return
        available_file = files[0].parent / "scaling_available_governors"
        available = available_file.read_text().split() if available_file.exists() else []
        if available and wanted not in available:
            raise PreflightError(
                f"system.cpu_governor: {wanted!r} is not available here; "
                f"choose one of {', '.join(available)}"
            )

    def __enter__(self) -> SystemKnobs:
        wanted = self.settings.cpu_governor
        if wanted is None or self.skipped:
            return self
        files = self._governor_files()
        try:
            for path in files:
                current = path.read_text().strip()
                if current != wanted:
                    if self.reaper is not None:
                        self.reaper.restore_on_death(path, current)
                    path.write_text(wanted)
                    self.previous[path] = current
        except OSError as e:  # EACCES without root, EROFS in containers, EINVAL from cpufreq
            failed = e.filename or files[0]
            self.restore()
            self._refuse(
                f"{failed}: cannot set the CPU governor ({e.strerror}); run "
                f"'sudo cpupower frequency-set -g {wanted}' before the study"
            )
            return self
        self.applied["cpu_governor"] = wanted
        logger.info("CPU governor set to %s on %d CPUs", wanted, len(files))
        return self

    def _refuse(self, reason: str) -> None:
        refuse_or_skip(self.settings, self.skipped, reason)

    def restore(self) -> None:
        """Write back every value changed (idempotent)."""
        for path, value in list(self.previous.items()):
            try:
                path.write_text(value)
            except OSError as e:
                logger.error("could not restore %s to %s: %s", path, value, e)
            else:
                if self.reaper is not None:
                    self.reaper.forget_restore(path)
            del self.previous[path]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()

    def provenance(self) -> dict[str, Any]:
        """What the study changed or could not change, for every run's provenance."""
        return {"applied": dict(self.applied), "skipped": list(self.skipped)}
