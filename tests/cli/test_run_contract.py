"""The run directory contract: absolute paths and placeholders, as an external script sees them."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import yaml

from hyperjoule.cli import main
from hyperjoule.records import RunStatus
from hyperjoule.storage import ResultsStore

# An external script in its own working directory: it saves a checkpoint where --save
# says and writes its metrics to the file hyperjoule names, like a research script would.
EXTERNAL_SCRIPT = textwrap.dedent(
    """
    import argparse, json, os, sys

    p = argparse.ArgumentParser()
    p.add_argument("--save", required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--epochs", type=int, required=True)
    a = p.parse_args()
    for name in ("HYPERJOULE_RUN_DIR", "HYPERJOULE_METRICS_FILE"):
        if not os.path.isabs(os.environ[name]):
            sys.exit(f"{name} is relative: {os.environ[name]}")
    with open(a.save, "w") as f:  # fails when the directory is not there
        f.write("weights")
    with open(os.environ["HYPERJOULE_METRICS_FILE"], "w") as f:
        json.dump({"test_ppl": 100.0 / a.epochs}, f)
    print("tag", a.tag, "env", os.environ["RUN_TAG"], "cwd", os.getcwd(), flush=True)
    """
)


def _write_project(root: Path, target: dict[str, object]) -> Path:
    (root / "lm").mkdir(parents=True)
    (root / "lm" / "main.py").write_text(EXTERNAL_SCRIPT)
    (root / "targets.yaml").write_text(yaml.safe_dump({"targets": {"lm": target}}))
    study = {
        "name": "lm",
        "targets": "targets.yaml",
        "allow_estimates": True,
        "experiments": [{"target": "lm", "mode": "default"}],
    }
    (root / "study.yaml").write_text(yaml.safe_dump(study))
    return root / "study.yaml"


def _lm_target(**extra: object) -> dict[str, object]:
    target: dict[str, object] = {
        "workdir": "lm",
        "command": ["{python}", "main.py"],
        "args": ["--save", "{run_dir}/model.pt", "--tag", "{{a}}-{attempt}"],
        "env": {"RUN_TAG": "{run_id}@{workdir}"},
        "hyperparameters": {"epochs": {"flag": "--epochs", "type": "int", "default": 4}},
        "required_metrics": ["test_ppl"],
    }
    target.update(extra)
    return target


def test_external_script_with_default_relative_results_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = _write_project(tmp_path, _lm_target())
    monkeypatch.chdir(tmp_path)
    assert main(["run", "study.yaml"]) == 0  # --results-dir defaults to ./results
    with ResultsStore(tmp_path / "results", create=False) as store:
        (record,) = list(store.iter_runs())
    assert record.status is RunStatus.SUCCEEDED, record.error
    run_dir = Path(record.run_dir or "")
    assert run_dir.is_absolute() and run_dir.is_relative_to(tmp_path / "results")
    assert (run_dir / "model.pt").read_text() == "weights"
    assert record.metrics == {"test_ppl": 25.0}
    assert f"--save {run_dir}/model.pt" in " ".join(record.command)
    log = (run_dir / "attempt-1.log").read_text()
    assert "tag {a}-1" in log  # {{ and }} are literal braces
    assert f"env {record.run_id}@{tmp_path / 'lm'}" in log
    assert f"cwd {tmp_path / 'lm'}" in log
    assert not list((tmp_path / "lm").iterdir())[1:]  # nothing but main.py in the workdir
    assert study.is_file()


@pytest.mark.parametrize(
    ("field", "value", "culprit"),
    [
        ("args", ["--save", "{rundir}/model.pt"], "targets.lm.args.1"),
        ("command", ["{python}", "main.py", "{"], "targets.lm.command.2"),
        ("env", {"RUN_TAG": "{seed}"}, "targets.lm.env.RUN_TAG"),
    ],
)
def test_unknown_placeholder_is_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    field: str,
    value: object,
    culprit: str,
) -> None:
    study = _write_project(tmp_path, _lm_target(**{field: value}))
    results = tmp_path / "results"
    assert main(["run", str(study), "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "targets.yaml:" in err and culprit in err
    assert "placeholder" in err or "brace" in err
    assert not results.exists()
    assert main(["plan", str(study), "--results-dir", str(results)]) == 2


def test_metrics_file_path_is_absolute_for_background_too(tmp_path: Path) -> None:
    # The background of a parallel run gets its own absolute run directory.
    target = _lm_target()
    study = _write_project(tmp_path, target)
    data = yaml.safe_load(study.read_text())
    data["experiments"] = [
        {
            "mode": "parallel",
            "foreground": {"target": "lm"},
            "background": {"target": "lm"},
            "warmup_min_s": 0,
            "warmup_max_s": 0.5,
        }
    ]
    study.write_text(yaml.safe_dump(data))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["run", "study.yaml"]) == 0
    finally:
        os.chdir(cwd)
    with ResultsStore(tmp_path / "results", create=False) as store:
        (record,) = list(store.iter_runs())
    assert record.status is RunStatus.SUCCEEDED, record.error
    checkpoints = list(Path(record.run_dir or "").glob("background/attempt-1/1-lm/model.pt"))
    assert checkpoints, json.dumps(record.background)
