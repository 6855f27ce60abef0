"""Failure lifecycle through the CLI: fix a target, see that it changed, rerun its failures."""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path

import pytest
import yaml

from hyperjoule.cli import main
from hyperjoule.records import RunStatus
from hyperjoule.storage import ResultsStore

BROKEN = textwrap.dedent(
    """
    import argparse, json, os, sys
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, required=True)
    a = p.parse_args()
    if a.epochs > 2:
        raise SystemExit("ValueError: epochs above 2 not supported")  # the bug
    with open(os.environ["HYPERJOULE_METRICS_FILE"], "w") as f:
        json.dump({"test_ppl": 50.0 / a.epochs}, f)
    """
)
FIXED = BROKEN.replace("a.epochs > 2", "a.epochs > 99")


def _project(root: Path) -> Path:
    (root / "lm").mkdir(parents=True)
    (root / "lm" / "main.py").write_text(BROKEN)
    target = {
        "workdir": "lm",
        "command": ["{python}", "main.py"],
        "hyperparameters": {
            "epochs": {"flag": "--epochs", "type": "int", "default": 1, "range": [1, 4]}
        },
        "required_metrics": ["test_ppl"],
    }
    (root / "targets.yaml").write_text(yaml.safe_dump({"targets": {"lm": target}}))
    study = {
        "name": "lm",
        "targets": "targets.yaml",
        "allow_estimates": True,
        "defaults": {"max_retries": 2},
        "experiments": [
            {"target": "lm", "mode": "default"},
            {"target": "lm", "mode": "default", "hyperparameters": {"epochs": 4}},
        ],
    }
    (root / "study.yaml").write_text(yaml.safe_dump(study))
    return root / "study.yaml"


def _records(results: Path) -> list[dict[str, object]]:
    with ResultsStore(results, create=False) as store:
        return [r.to_dict() for r in store.iter_runs()]


def test_fixed_target_is_reported_and_its_failures_rerun(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _project(tmp_path)
    results = tmp_path / "results"
    args = [str(study), "--results-dir", str(results)]
    assert main(["run", *args]) == 0
    first = {r["slot_id"]: r for r in _records(results)}
    failed = first["e1-1"]
    assert failed["status"] == "failed" and first["e0-1"]["status"] == "succeeded"
    assert failed["attempts"] == 1  # a crash is not retried by default
    assert failed["provenance"]["target_fingerprint"]["scripts"]["main.py"]  # type: ignore[index]

    capsys.readouterr()
    assert main(["plan", *args]) == 0
    assert "changed" not in capsys.readouterr().out

    (tmp_path / "lm" / "main.py").write_text(FIXED)
    assert main(["plan", *args]) == 0
    out = capsys.readouterr().out
    changed = [line for line in out.splitlines() if line.startswith("changed")]
    assert len(changed) == 1 and "target lm" in changed[0] and "script main.py" in changed[0]
    assert "since 2 of its 2 finished run(s)" in changed[0]

    # Without --rerun the failed slot stays finished; the change is still reported.
    assert main(["run", *args]) == 0
    out = capsys.readouterr().out
    assert "nothing to run" in out and "changed: target lm" in out
    assert len(_records(results)) == 2

    assert main(["plan", *args, "--rerun", "failed"]) == 0
    assert "1 of them again" in capsys.readouterr().out
    assert main(["run", *args, "--rerun", "failed"]) == 0
    records = _records(results)
    assert len(records) == 3  # the failed record stays as history
    rerun = records[-1]
    assert rerun["slot_id"] == "e1-1" and rerun["status"] == "succeeded"
    assert rerun["rerun_of"] == failed["run_id"]
    assert main(["run", *args, "--rerun", "failed"]) == 0  # the slot's result succeeded now
    assert len(_records(results)) == 3
    # The rerun measured the fixed script; only the other slot's result is from before.
    capsys.readouterr()
    assert main(["plan", *args]) == 0
    assert "changed: target lm changed since 1 of its 2 finished run(s)" in (
        capsys.readouterr().out
    )


def test_changed_args_are_reported_once_per_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = _project(tmp_path)
    results = tmp_path / "results"
    assert main(["run", str(study), "--results-dir", str(results)]) == 0
    data = yaml.safe_load((tmp_path / "targets.yaml").read_text())
    data["targets"]["lm"]["env"] = {"OMP_NUM_THREADS": "1"}
    data["targets"]["lm"]["hyperparameters"]["epochs"]["flag"] = "--n-epochs"
    (tmp_path / "targets.yaml").write_text(yaml.safe_dump(data))
    capsys.readouterr()
    assert main(["plan", str(study), "--results-dir", str(results)]) == 0
    changed = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("changed")]
    assert len(changed) == 1
    assert "env" in changed[0] and "hyperparameter_flags" in changed[0]
    assert "script" not in changed[0]


@pytest.mark.parametrize("value", ["faild", "failed,bogus", "interrupted", ""])
def test_rerun_with_unknown_status_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    study = _project(tmp_path)
    results = tmp_path / "results"
    for command in ("run", "plan"):
        assert main([command, str(study), "--results-dir", str(results), "--rerun", value]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--rerun" in err and "failed" in err
    assert not results.exists()


def test_retry_on_per_experiment(tmp_path: Path) -> None:
    study = _project(tmp_path)
    data = yaml.safe_load(study.read_text())
    data["experiments"][1]["retry_on"] = ["failed"]
    study.write_text(yaml.safe_dump(data))
    results = tmp_path / "results"
    assert main(["run", str(study), "--results-dir", str(results)]) == 0
    failed = next(r for r in _records(results) if r["slot_id"] == "e1-1")
    assert failed["status"] == RunStatus.FAILED.value and failed["attempts"] == 3
    bad = yaml.safe_load(study.read_text())
    bad["defaults"]["retry_on"] = ["segfault"]
    study.write_text(yaml.safe_dump(bad))
    assert main(["plan", str(study), "--results-dir", str(results)]) == 2


def test_every_attempt_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A flaky script: fails on its first attempt, succeeds on the retry.
    study = _project(tmp_path)
    flaky = FIXED.replace(
        "a = p.parse_args()\n",
        "a = p.parse_args()\nif os.environ['HYPERJOULE_ATTEMPT'] == '1':\n"
        "    sum(range(2_000_000)); sys.exit('transient')\n",
    )
    (tmp_path / "lm" / "main.py").write_text(flaky)
    data = yaml.safe_load(study.read_text())
    data["defaults"] = {"max_retries": 1, "retry_on": ["failed"]}
    study.write_text(yaml.safe_dump(data))
    results = tmp_path / "results"
    assert main(["run", str(study), "--results-dir", str(results)]) == 0
    out = capsys.readouterr().out
    records = _records(results)
    assert [r["attempts"] for r in records] == [2, 2]
    total_j = failed_j = 0.0
    for record in records:
        energy = record["energy"]
        log = record["attempt_log"]
        assert isinstance(energy, dict) and isinstance(log, list)
        per_attempt = [a["energy_total_j"] for a in log]
        assert all(e is not None and e > 0 for e in per_attempt)
        assert energy["attempts_total_j"] == pytest.approx(sum(per_attempt))
        assert energy["attempts_total_j"] > energy["total_j"]  # not only the last attempt
        assert energy["attempts_total_method"] == "estimated"
        assert energy["attempts_unmeasured"] == 0
        total_j += sum(per_attempt)
        failed_j += per_attempt[0]
    assert out.count(", all 2 attempts ") == 2  # each run's line adds up its attempts
    last = out.strip().splitlines()[-1]
    assert last.startswith("energy spent by this session:")
    assert f"{total_j:,.1f} J in 4 attempt(s) (estimated)" in last
    assert f"{failed_j:,.1f} J of it in 2 that did not succeed" in last

    (summary,) = results.glob("lm/*/summary.csv")
    with summary.open() as f:
        rows = list(csv.DictReader(f))
    by_id = {r["run_id"]: r for r in rows}
    for record in records:
        row = by_id[str(record["run_id"])]
        energy = record["energy"]
        assert isinstance(energy, dict)
        assert float(row["energy_attempts_total_joules"]) == pytest.approx(
            energy["attempts_total_j"]
        )
        assert float(row["energy_total_joules"]) == pytest.approx(energy["total_j"])

    assert main(["runs", "--results-dir", str(results)]) == 0
    table = capsys.readouterr().out
    assert "all attempts" in table and "(2x)" in table
