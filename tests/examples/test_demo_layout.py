"""The bundled targets write only into their run directories; ``init`` copies no results."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import hyperjoule.cli._scaffold as scaffold_module
from hyperjoule.cli import main
from hyperjoule.records import RunStatus
from hyperjoule.storage import ResultsStore

EXAMPLES = scaffold_module.EXAMPLES_DIR


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts}


def test_bundled_target_writes_only_into_its_run_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _tree(EXAMPLES)
    study = yaml.safe_load((EXAMPLES / "quickstart" / "study.yaml").read_text())
    study["targets"] = str(EXAMPLES / "targets.yaml")
    study["experiments"] = [
        {"target": "digits-cnn", "model": "small", "hyperparameters": {"epochs": 1}}
    ]
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    monkeypatch.chdir(tmp_path)  # like `make demo`: a relative results directory
    assert main(["run", "study.yaml", "--results-dir", "demo-results"]) == 0
    with ResultsStore(tmp_path / "demo-results", create=False) as store:
        (record,) = list(store.iter_runs())
    assert record.status is RunStatus.SUCCEEDED, record.error
    run_dir = Path(record.run_dir or "")
    assert {"config.json", "history.json"} <= {p.name for p in run_dir.iterdir()}
    assert _tree(EXAMPLES) == before  # nothing new under src/


def test_init_copies_scripts_but_no_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An examples directory with what an earlier run could leave beside the scripts.
    examples = tmp_path / "examples"
    shutil.copytree(EXAMPLES, examples)
    stray = examples / "digits" / "demo-results" / "quickstart"
    stray.mkdir(parents=True)
    (stray / "history.json").write_text("{}")
    (examples / "digits" / "config.json").write_text("{}")
    monkeypatch.setattr(scaffold_module, "EXAMPLES_DIR", examples)
    assert main(["init", str(tmp_path / "new")]) == 0
    copied = _tree(tmp_path / "new" / "digits")
    assert copied and all(name.endswith(".py") for name in copied), copied
