"""`report -o` and `export -o` never overwrite the database or a run's files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import Project
from hyperjoule.cli import main
from hyperjoule.storage import ResultsStore


@pytest.fixture
def measured(project: Project) -> Project:
    study = project.write_study([{"target": "toy", "model": "small", "mode": "default"}])
    assert main(["run", str(study), "--results-dir", str(project.results)]) == 0
    return project


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "-"


def test_results_files_are_refused(measured: Project, capsys: pytest.CaptureFixture[str]) -> None:
    results = measured.results
    with ResultsStore(results, create=False) as store:
        run_dir = Path(next(iter(store.iter_runs())).run_dir or "")
    link = measured.root / "innocent.html"
    link.symlink_to(results / "hyperjoule.db")
    protected = [
        results / "hyperjoule.db",
        results / "hyperjoule.db-wal",
        results / "hyperjoule.db-shm",
        link,
        run_dir / "attempt-1.log",
        run_dir / "report.html",
        run_dir.parent / "summary.csv",
    ]
    before = {p: _digest(p) for p in protected}
    for output in protected:
        for argv in (
            ["report", "--results-dir", str(results), "-o", str(output)],
            ["export", "--results-dir", str(results), "--format", "csv", "-o", str(output)],
        ):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and "refusing to write there" in err[0], err
    assert {p: _digest(p) for p in protected} == before
    assert not (run_dir / "report.html").exists()
    with ResultsStore(results, create=False) as store:
        assert len(list(store.iter_runs())) == 1
    # Beside the database is fine.
    assert main(["report", "--results-dir", str(results), "-o", str(results / "r.html")]) == 0
