"""Bringing a run directory back from a node that does not share the results directory.

A Ray task that ran in a node-local staging directory packs the files of its attempt
(logs, ``metrics.json``, ``energy/*.csv``, background logs, the target's own files) into
its result; files over the size limits stay on the node and the record says where. The
coordinator unpacks them into the run directory. Target output is untrusted: only
regular files under the run directory travel (no symbolic links, no absolute or ``..``
paths), and unpacking refuses any path that would leave the run directory.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_TOTAL_BYTES",
    "PackedRunDir",
    "ReturnedFile",
    "pack_run_dir",
    "unpack_run_dir",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_FILE_BYTES = 32 * 2**20
"""Files larger than this (bytes) stay on the node (checkpoints, datasets)."""

DEFAULT_MAX_TOTAL_BYTES = 256 * 2**20
"""At most this many bytes come back per attempt; the rest stays on the node."""


@dataclass(frozen=True)
class ReturnedFile:
    """One file brought back: its path relative to the run directory and its bytes."""

    path: str
    data: bytes


@dataclass
class PackedRunDir:
    """What a node sends back of one attempt's run directory.

    Attributes:
        files: Files that travel, smallest first (logs and timelines always fit).
        left_on_node: Files that stay on the node: relative path to absolute node path.
        skipped: Entries that were not regular files (links, sockets), relative paths.
    """

    files: list[ReturnedFile] = field(default_factory=list)
    left_on_node: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def _relative_safe(path: str) -> PurePosixPath | None:
    rel = PurePosixPath(path)
    if rel.is_absolute() or not rel.parts or any(p in ("..", "") for p in rel.parts):
        return None
    return rel


def pack_run_dir(
    directory: Path,
    *,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
) -> PackedRunDir:
    """Read every regular file under ``directory`` that fits the limits.

    Small files go first, so when the total limit is reached what stays behind are the
    largest files (checkpoints), never the logs.
    """
    packed = PackedRunDir()
    entries: list[tuple[int, str, Path]] = []
    for root, dirs, names in os.walk(directory, followlinks=False):
        for name in sorted(names) + [d for d in dirs if Path(root, d).is_symlink()]:
            full = Path(root, name)
            rel = full.relative_to(directory).as_posix()
            info = full.lstat()
            if not stat.S_ISREG(info.st_mode):
                packed.skipped.append(rel)
                continue
            entries.append((info.st_size, rel, full))
    total = 0
    for size, rel, full in sorted(entries):
        if size > max_file_bytes or total + size > max_total_bytes:
            packed.left_on_node[rel] = str(full)
            continue
        try:
            data = full.read_bytes()
        except OSError as e:
            logger.warning("cannot read %s to send it back: %s", full, e)
            packed.left_on_node[rel] = str(full)
            continue
        total += len(data)
        packed.files.append(ReturnedFile(rel, data))
    return packed


def unpack_run_dir(files: Iterable[ReturnedFile], directory: Path) -> list[str]:
    """Write returned files under ``directory``; return the relative paths written.

    Raises:
        ValueError: A path is absolute or climbs out of ``directory`` (never written).
    """
    written: list[str] = []
    base = directory.resolve()
    for returned in files:
        rel = _relative_safe(returned.path)
        if rel is None:
            raise ValueError(f"refusing to write {returned.path!r} outside the run directory")
        base.mkdir(parents=True, exist_ok=True)
        parent = base
        for part in rel.parts[:-1]:  # no directory of the path may be a link
            parent = parent / part
            if parent.is_symlink():
                raise ValueError(f"refusing to write {returned.path!r} through a link")
            parent.mkdir(exist_ok=True)
        target = parent / rel.parts[-1]
        if target.is_symlink():
            target.unlink()
        target.write_bytes(returned.data)
        written.append(rel.as_posix())
    return written
