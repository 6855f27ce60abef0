"""The bundled digits scripts, run as real processes, and the example targets and study."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from hyperjoule.cli._scaffold import EXAMPLES_DIR, scaffold
from hyperjoule.config import Target, load_study, load_targets
from hyperjoule.planning import plan_study

SCRIPTS_DIR = EXAMPLES_DIR / "digits"
TARGETS = {"train_cnn": "digits-cnn", "train_rnn": "digits-rnn", "train_ff": "digits-ff"}
METRICS_PREFIX = "HYPERJOULE_METRICS "
METRIC_KEYS = {"test_accuracy", "test_loss", "train_loss", "epochs"}


@dataclass
class ScriptRun:
    """A finished run of one script: its output and the files it wrote."""

    returncode: int
    stdout: str
    stderr: str
    run_dir: Path
    out_dir: Path | None
    metrics_file: Path

    @property
    def output_dir(self) -> Path:
        return self.out_dir or self.run_dir

    def metrics_line(self) -> dict[str, float]:
        lines = [ln for ln in self.stdout.splitlines() if ln.startswith(METRICS_PREFIX)]
        assert len(lines) == 1, self.stdout
        metrics: dict[str, float] = json.loads(lines[0].removeprefix(METRICS_PREFIX))
        return metrics

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = json.loads(self._read("config.json"))
        return config

    def history(self) -> list[dict[str, Any]]:
        history: list[dict[str, Any]] = json.loads(self._read("history.json"))
        return history

    def _read(self, name: str) -> str:
        return (self.output_dir / name).read_text(encoding="utf-8")


def _start(
    script: str, tmp: Path, *extra: str, use_out_dir: bool = False
) -> tuple[subprocess.Popen[str], Path, Path | None, Path]:
    run_dir = tmp / "run"
    run_dir.mkdir(parents=True)
    out_dir = tmp / "out" if use_out_dir else None
    metrics_file = tmp / "metrics.json"
    env = {
        **os.environ,
        "HYPERJOULE_RUN_DIR": str(run_dir),
        "HYPERJOULE_METRICS_FILE": str(metrics_file),
        "OMP_NUM_THREADS": "1",
    }
    argv = [sys.executable, f"{script}.py", "--epochs", "1", "--device", "cpu", *extra]
    if out_dir is not None:
        argv += ["--out-dir", str(out_dir)]
    proc = subprocess.Popen(
        argv, cwd=SCRIPTS_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return proc, run_dir, out_dir, metrics_file


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ScriptRun]:
    """Each script once, plus the CNN again with the same seed into --out-dir, all at once.

    The runs are started together because importing torch takes most of each run's
    time; concurrently they cost about half what they would in a row.
    """
    started = {script: _start(script, tmp_path_factory.mktemp(script)) for script in TARGETS}
    started["train_cnn-again"] = _start(
        "train_cnn", tmp_path_factory.mktemp("train_cnn-again"), use_out_dir=True
    )
    results: dict[str, ScriptRun] = {}
    try:
        for name, (proc, run_dir, out_dir, metrics_file) in started.items():
            stdout, stderr = proc.communicate(timeout=240)
            results[name] = ScriptRun(
                proc.returncode, stdout, stderr, run_dir, out_dir, metrics_file
            )
    finally:
        for proc, *_ in started.values():
            if proc.poll() is None:  # only after a timeout: leave no stray trainer behind
                proc.kill()
                proc.communicate()
    return results


@pytest.fixture(scope="module")
def targets() -> dict[str, Target]:
    return load_targets(EXAMPLES_DIR / "targets.yaml")


@pytest.fixture
def script_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """Import a script in-process (to read its parser), leaving sys.modules as it was."""
    monkeypatch.syspath_prepend(str(SCRIPTS_DIR))
    before = set(sys.modules)
    yield importlib.import_module("_common")
    for name in set(sys.modules) - before:
        if name in ("_common", "_output", "_train", *TARGETS):
            del sys.modules[name]


@pytest.fixture
def in_process(
    script_module: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Callable[[str, list[str]], dict[str, float]]]:
    """Run a script's main() in this process and return its metrics line."""
    import torch

    monkeypatch.delenv("HYPERJOULE_RUN_DIR", raising=False)
    monkeypatch.delenv("HYPERJOULE_METRICS_FILE", raising=False)
    threads = torch.get_num_threads()
    counter = iter(range(1000))

    def run(script: str, argv: list[str]) -> dict[str, float]:
        out_dir = tmp_path / f"{script}-{next(counter)}"
        assert importlib.import_module(script).main([*argv, "--out-dir", str(out_dir)]) == 0
        lines = capsys.readouterr().out.splitlines()
        (line,) = [ln for ln in lines if ln.startswith(METRICS_PREFIX)]
        metrics: dict[str, float] = json.loads(line.removeprefix(METRICS_PREFIX))
        return metrics

    yield run
    # The scripts set process-wide torch state; leave it as other tests expect it.
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("script", list(TARGETS))
def test_script_prints_metrics_line_and_final_line(
    runs: dict[str, ScriptRun], targets: dict[str, Target], script: str
) -> None:
    run = runs[script]
    assert run.returncode == 0, run.stderr
    metrics = run.metrics_line()
    assert set(metrics) == METRIC_KEYS
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["epochs"] == 1
    spec = targets[TARGETS[script]].metrics["test_accuracy"]
    fallback = re.findall(spec.regex, run.stdout)
    assert fallback and float(fallback[-1]) == pytest.approx(metrics["test_accuracy"], abs=5e-5)
    assert json.loads(run.metrics_file.read_text(encoding="utf-8")) == metrics
    assert not list(run.metrics_file.parent.glob(".*.tmp"))  # written atomically


@pytest.mark.parametrize("script", list(TARGETS))
def test_script_writes_config_and_history(runs: dict[str, ScriptRun], script: str) -> None:
    run = runs[script]
    config = run.config()
    assert config["script"] == f"{script}.py"
    assert config["script_version"] and config["examples_version"]
    assert config["flags"]["epochs"] == 1 and config["flags"]["device"] == "cpu"
    assert config["device"]["used"] == "cpu" and config["device"]["name"]
    assert config["packages"]["torch"] and config["python"]["version"]
    assert "cuda_version" in config and config["deterministic_algorithms"] is True
    assert config["torch_num_threads"] == 1
    dataset = config["dataset"]
    assert dataset["train_size"] + dataset["test_size"] == dataset["samples"] == 1797
    assert dataset["split"]["depends_on_seed"] is False
    assert config["model"]["parameters"] > 0 and config["model"]["class"]
    assert config["optimizer"]["class"] == "torch.optim.Adam"
    assert config["loss"] and "scheduler" in config
    assert config["output"] == {
        "directory": str(run.run_dir.resolve()),
        "chosen_by": "HYPERJOULE_RUN_DIR",
    }
    (epoch,) = run.history()
    assert set(epoch) == {"epoch", "train_loss", "test_loss", "test_accuracy", "duration_s"}
    assert epoch["epoch"] == 1 and epoch["duration_s"] > 0
    assert epoch["test_accuracy"] == run.metrics_line()["test_accuracy"]


def _without_durations(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in epoch.items() if k != "duration_s"} for epoch in history]


def test_same_seed_gives_identical_metrics_across_processes(runs: dict[str, ScriptRun]) -> None:
    first, again = runs["train_cnn"], runs["train_cnn-again"]
    assert again.returncode == 0, again.stderr
    assert first.metrics_line() == again.metrics_line()
    assert _without_durations(first.history()) == _without_durations(again.history())


@pytest.mark.parametrize("script", list(TARGETS))
def test_same_seed_gives_identical_metrics_in_process(
    in_process: Callable[[str, list[str]], dict[str, float]], script: str
) -> None:
    argv = ["--epochs", "1", "--seed", "3"]
    assert in_process(script, argv) == in_process(script, argv)


def test_out_dir_flag_wins_over_run_dir_env(runs: dict[str, ScriptRun]) -> None:
    run = runs["train_cnn-again"]
    assert run.out_dir is not None
    assert {p.name for p in run.out_dir.iterdir()} == {"config.json", "history.json"}
    assert not any(run.run_dir.iterdir())
    assert run.config()["output"]["chosen_by"] == "--out-dir"


def test_bad_flag_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "HYPERJOULE_RUN_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "train_cnn.py", "--epochs", "0"],
        cwd=SCRIPTS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--epochs" in result.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "flag",
    [
        ["--epochs", "0"],
        ["--lr", "-1"],
        ["--lr", "nan"],
        ["--batch-size", "x"],
        ["--weight-decay", "-0.1"],
        ["--dropout", "1"],
        ["--optimizer", "lbfgs"],
        ["--device", "tpu"],
        ["--model", "huge"],
    ],
)
def test_parser_rejects_bad_flags(
    script_module: ModuleType, capsys: pytest.CaptureFixture[str], flag: list[str]
) -> None:
    for script in TARGETS:
        parser = importlib.import_module(script).make_parser()
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(flag)
        assert exit_info.value.code == 2
        assert flag[0] in capsys.readouterr().err


def test_cuda_requested_without_cuda_exits_2_and_writes_nothing(
    in_process: Callable[[str, list[str]], dict[str, float]], tmp_path: Path
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(SystemExit) as exit_info:
        importlib.import_module("train_cnn").main(["--device", "cuda", "--out-dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert not any(tmp_path.iterdir())


def test_script_defaults_match_targets(
    script_module: ModuleType, targets: dict[str, Target]
) -> None:
    for script, target_name in TARGETS.items():
        parser = importlib.import_module(script).make_parser()
        target = targets[target_name]
        dest_of = {a.option_strings[0]: a.dest for a in parser._actions if a.option_strings}
        for name, hp in target.hyperparameters.items():
            assert parser.get_default(dest_of[hp.flag]) == hp.default, (target_name, name)
        assert target.models == ["small", "large"] and target.model_flag == "--model"
        parser.parse_args(target.args)  # the fixed arguments are flags the script takes


def test_digits_data_is_sklearns_load_digits(script_module: ModuleType) -> None:
    from sklearn.datasets import load_digits

    images, labels, source = script_module._read_digits()
    expected = load_digits()
    assert source.endswith("digits.csv.gz")
    assert (images == expected.images).all() and (labels == expected.target).all()
    train, test = script_module.split_indices(labels)
    assert len(set(train) | set(test)) == len(labels) and not set(train) & set(test)
    for label in range(10):  # stratified: every class is in the test set in proportion
        share = (labels[test] == label).sum() / (labels == label).sum()
        assert share == pytest.approx(0.25, abs=0.01)


def test_targets_file_declares_the_three_targets(targets: dict[str, Target]) -> None:
    assert set(targets) == set(TARGETS.values())
    for script, name in TARGETS.items():
        target = targets[name]
        assert target.command == ["{python}", f"{script}.py"]
        assert (target.workdir / f"{script}.py").is_file()
        assert target.env == {"OMP_NUM_THREADS": "1"}
        assert target.required_metrics == ["test_accuracy"]
        assert target.hyperparameters["weight_decay"].zero_probability > 0
        assert all(hp.mutable for hp in target.hyperparameters.values())


def test_quickstart_study_loads_and_plans_twelve_runs() -> None:
    path = EXAMPLES_DIR / "quickstart" / "study.yaml"
    # `hyperjoule init` rewrites exactly this line when it copies the study.
    assert "targets: ../targets.yaml\n" in path.read_text(encoding="utf-8")
    loaded = load_study(path)
    assert loaded.name == "quickstart"
    specs = plan_study(loaded)
    assert len(specs) == 12
    assert {s.target for s in specs if s.mode == "default"} == set(TARGETS.values())
    assert sum(s.mode == "mutation" for s in specs) == 7


def test_scaffolded_project_loads(tmp_path: Path) -> None:
    scaffold(tmp_path / "project")
    loaded = load_study(tmp_path / "project" / "study.yaml")
    assert set(loaded.targets) == set(TARGETS.values())
    assert all(t.workdir == (tmp_path / "project" / "digits") for t in loaded.targets.values())


@pytest.mark.slow
def test_other_seed_changes_training_not_the_split(
    runs: dict[str, ScriptRun], tmp_path: Path
) -> None:
    proc, run_dir, _, _ = _start("train_cnn", tmp_path, "--seed", "2")
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stderr
    other = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    base = runs["train_cnn"]
    assert other["dataset"]["split"] == base.config()["dataset"]["split"]
    other_history = json.loads((run_dir / "history.json").read_text(encoding="utf-8"))
    assert other_history[0]["train_loss"] != base.history()[0]["train_loss"]
