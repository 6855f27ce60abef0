"""Ray is optional: never imported without ``--executor ray``; missing, it is one clear line."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from conftest import Project
from hyperjoule.cli import main


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_a_local_study_imports_nothing_of_ray(project: Project) -> None:
    study = project.write_study([{"target": "toy", "model": "small"}])
    done = _python(
        f"""
        import sys
        from hyperjoule.cli import main
        code = main(["run", {str(study)!r}, "--results-dir", {str(project.results)!r}])
        assert code == 0, code
        loaded = sorted(m for m in sys.modules if m == "ray" or m.startswith("ray."))
        print("RAY MODULES", loaded)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "RAY MODULES []" in done.stdout


def test_without_ray_installed_the_ray_executor_says_how_to_install_it(project: Project) -> None:
    study = project.write_study([{"target": "toy", "model": "small"}])
    done = _python(
        f"""
        import sys
        sys.modules["ray"] = None  # as if Ray were not installed: importing it fails
        from hyperjoule.cli import main
        args = ["run", {str(study)!r}, "--results-dir", {str(project.results)!r}]
        sys.exit(main(args + ["--executor", "ray"]))
        """
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'hyperjoule[ray]'" in lines[0], done.stderr
    assert not (project.results / "hyperjoule.db").exists()  # nothing written


def test_address_without_a_ray_executor_is_refused(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    study = project.write_study([{"target": "toy", "model": "small"}])
    args = ["run", str(study), "--results-dir", str(project.results), "--address", "auto"]
    assert main(args) == 2
    assert "--executor ray" in capsys.readouterr().err
    assert not project.results.exists()
