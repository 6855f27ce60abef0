"""Provenance: what a run needs to be reproduced and compared later.

Collected once per session (host, software) and once per target (code version); cheap
and never fatal: a fact that cannot be read is recorded as None.
"""

from __future__ import annotations

import getpass
import importlib.metadata
import logging
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["collect_host", "collect_target_version", "hyperjoule_version"]

logger = logging.getLogger(__name__)

_PACKAGES = ("torch", "numpy", "scikit-learn", "nvidia-ml-py", "zeus", "pydantic")


def hyperjoule_version() -> str:
    """Return the installed hyperjoule version."""
    try:
        return importlib.metadata.version("hyperjoule")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def collect_host() -> dict[str, Any]:
    """Return facts about this machine and its software (no GPU query: meters do that)."""
    try:
        user: str | None = getpass.getuser()
    except (KeyError, OSError):
        user = None
    return {
        "hostname": socket.gethostname(),
        "user": user,
        "os": platform.platform(),
        "kernel": platform.release(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": _memory_bytes(),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "hyperjoule": hyperjoule_version(),
        "packages": _package_versions(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


def _git(workdir: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(workdir), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def collect_target_version(workdir: Path) -> dict[str, Any]:
    """Return the git commit and dirty flag of a target's workdir (None when not a repo)."""
    commit = _git(workdir, "rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None, "git_root": None}
    status = _git(workdir, "status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": commit,
        "git_dirty": bool(status) if status is not None else None,
        "git_root": _git(workdir, "rev-parse", "--show-toplevel"),
    }
