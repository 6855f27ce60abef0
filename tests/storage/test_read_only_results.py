"""An archive of results on a read-only mount can be listed, reported and exported."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Project
from hyperjoule.cli import main


def _can_mount_read_only(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    script = f"mount --bind -o ro {probe} {probe} && ! touch {probe}/x 2>/dev/null"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True)
    return done.returncode == 0


def test_read_only_mount_is_listed_reported_and_exported(project: Project, tmp_path: Path) -> None:
    if not _can_mount_read_only(tmp_path):
        pytest.skip("needs user namespaces (unshare -rm) to make a read-only mount")
    study = project.write_study([{"target": "toy", "model": "small", "mode": "default"}])
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    results = project.results
    before = sorted(p.name for p in results.iterdir())
    out = tmp_path / "out"
    out.mkdir()
    hj = f"{sys.executable} -m hyperjoule"
    commands = [
        f"{hj} runs --results-dir {results}",
        f"{hj} runs --results-dir {results} --format csv",
        f"{hj} report --results-dir {results} -o {out}/r.html",
        f"{hj} export --results-dir {results} --format csv -o {out}/r.csv",
    ]
    # The mount exists only inside this namespace: every command sees EROFS on results/.
    script = f"mount --bind -o ro {results} {results} && " + " && ".join(commands)
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "toy/small" in done.stdout and "not a usable" not in done.stderr
    assert (out / "r.html").stat().st_size > 0
    assert len((out / "r.csv").read_text().splitlines()) == 2
    assert sorted(p.name for p in results.iterdir()) == before
