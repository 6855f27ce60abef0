"""Every malformed input is refused before anything runs: exit 2, one line, nothing written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Project, target_block
from hyperjoule.cli import main


def _run(project: Project, study: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["run", str(study), "--results-dir", str(project.results)])
    err = capsys.readouterr().err
    return code, err


def _hp(project: Project, name: str, **changes: object) -> None:
    block = target_block()
    hps = block["hyperparameters"]
    assert isinstance(hps, dict)
    hps[name] = {**hps[name], **changes}
    project.write_targets({"toy": block})


DEFAULT = {"target": "toy", "model": "small", "mode": "default"}

Case = Callable[[Project], Path]

CASES: dict[str, tuple[Case, list[str]]] = {
    "unknown study key": (
        lambda p: p.write_study(
            [{"target": "toy", "model": "small", "mode": "mutation", "mutate_params": ["lr"]}]
        ),
        ["s.yaml:", "experiments.0.mutate_params", "unknown key", "did you mean 'mutate'"],
    ),
    "mutate in a default experiment": (
        lambda p: p.write_study([{**DEFAULT, "mutate": ["lr"]}]),
        ["experiments.0.mutate", "not allowed here", "'mode: mutation'", "'foreground'"],
    ),
    "unknown target": (
        lambda p: p.write_study([{**DEFAULT, "target": "toyy"}]),
        ["s.yaml:", "experiments.0.target", "unknown target 'toyy'", "did you mean 'toy'"],
    ),
    "unknown model": (
        lambda p: p.write_study([{**DEFAULT, "model": "huge"}]),
        ["experiments.0.model", "unknown model 'huge'", "small"],
    ),
    "unknown hyperparameter": (
        lambda p: p.write_study([{**DEFAULT, "hyperparameters": {"epoch": 3}}]),
        ["experiments.0.hyperparameters.epoch", "no hyperparameter 'epoch'", "epochs"],
    ),
    "unknown mutated hyperparameter": (
        lambda p: p.write_study([{**DEFAULT, "mode": "mutation", "mutate": ["lrr"]}]),
        ["experiments.0.mutate.0", "no hyperparameter 'lrr'"],
    ),
    "wrong override type": (
        lambda p: p.write_study([{**DEFAULT, "hyperparameters": {"epochs": 2.5}}]),
        ["experiments.0.hyperparameters.epochs", "not an integer"],
    ),
    "wrong runs type": (
        lambda p: p.write_study([{**DEFAULT, "runs": "three"}]),
        ["experiments.0.runs", "three"],
    ),
    "unknown mode": (
        lambda p: p.write_study([{**DEFAULT, "mode": "mutate"}]),
        ["experiments.0", "mode must be one of default, mutation, parallel"],
    ),
    "parallel without background": (
        lambda p: p.write_study(
            [{"mode": "parallel", "foreground": {"target": "toy", "model": "small"}}]
        ),
        ["experiments.0.background", "missing"],
    ),
    "impossible mutation": (
        lambda p: p.write_study(
            [{**DEFAULT, "mode": "mutation", "mutate": ["epochs"], "runs": 50}]
        ),
        ["s.yaml", "experiments.0.runs", "asks for 50", "holds only 4"],
    ),
    "missing targets file": (
        lambda p: p.write_study([DEFAULT], targets="nope.yaml"),
        ["s.yaml", "targets", "nope.yaml not found"],
    ),
    "missing study file": (
        lambda p: p.root / "absent.yaml",
        ["absent.yaml", "study file not found"],
    ),
}


def _targets_case(changes: dict[str, object], name: str = "epochs") -> Case:
    def make(p: Project) -> Path:
        _hp(p, name, **changes)
        return p.write_study([DEFAULT])

    return make


def _misplaced_metric_key(p: Project) -> Path:
    p.write_targets({"toy": {**target_block(), "metric": {}}})
    return p.write_study([DEFAULT])


def _metric_case(spec: dict[str, object]) -> Case:
    def make(p: Project) -> Path:
        block = target_block()
        metrics = block["metrics"]
        assert isinstance(metrics, dict)
        p.write_targets({"toy": {**block, "metrics": {**metrics, "ppl": spec}}})
        return p.write_study([DEFAULT])

    return make


TARGET_CASES: dict[str, tuple[Case, list[str]]] = {
    "reversed range": (
        _targets_case({"range": [5, 1]}),
        ["targets.yaml:", "targets.toy.hyperparameters.epochs", "reversed"],
    ),
    "log-uniform touching zero": (
        _targets_case({"range": [0.0, 1.0]}, name="lr"),
        ["targets.toy.hyperparameters.lr", "log_uniform needs a range above 0"],
    ),
    "default of wrong type": (
        _targets_case({"default": "two"}),
        ["targets.toy.hyperparameters.epochs", "not a number"],
    ),
    "unknown distribution": (
        _targets_case({"distribution": "normal"}),
        ["targets.toy.hyperparameters.epochs.distribution", "normal"],
    ),
    "metric (a prune key) for metrics in a target": (
        _misplaced_metric_key,
        ["targets.toy.metric", "not allowed here", "did you mean 'metrics'"],
    ),
    "unknown hyperparameter key": (
        _targets_case({"zero_prob": 0.3}),
        ["targets.toy.hyperparameters.epochs.zero_prob", "did you mean 'zero_probability'"],
    ),
    "metric goal neither minimize nor maximize": (
        _metric_case({"regex": r"ppl ([0-9.]+)", "goal": "minimise"}),
        ["targets.yaml:", "targets.toy.metrics.ppl.goal", "'minimize' or 'maximize'"],
    ),
    "metric with neither goal nor regex": (
        _metric_case({"match": "last"}),
        ["targets.yaml:", "targets.toy.metrics.ppl", "declare a 'goal'"],
    ),
}


@pytest.mark.parametrize("case", sorted({**CASES, **TARGET_CASES}))
def test_bad_input_is_refused_with_one_line(
    case: str, project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    make, expected = {**CASES, **TARGET_CASES}[case]
    study = make(project)
    code, err = _run(project, study, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("hyperjoule: error: ")
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])
    assert "Traceback" not in err
    assert not project.results.exists(), "nothing may be written for bad input"


def test_unreadable_yaml(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    study = project.root / "broken.yaml"
    study.write_text("name: s\nexperiments:\n  - {target: toy\n  mode: default\n")
    code, err = _run(project, study, capsys)
    assert code == 2
    assert "broken.yaml:" in err and "invalid YAML" in err
    assert not project.results.exists()


def test_missing_workdir(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.write_targets({"toy": target_block(workdir="elsewhere")})
    code, err = _run(project, project.write_study([DEFAULT]), capsys)
    assert code == 2
    assert "targets.yaml:" in err and "targets.toy.workdir" in err and "does not exist" in err


def test_missing_asset_is_listed(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.write_targets({"toy": target_block(assets=["weights/resnet50.pth"])})
    code, err = _run(project, project.write_study([DEFAULT]), capsys)
    assert code == 2
    assert "weights/resnet50.pth" in err and "missing" in err
    assert not project.results.exists()


def test_json_study_is_accepted_and_errors_have_lines(
    project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    study = project.root / "s.json"
    study.write_text(
        '{\n  "name": "s",\n  "targets": "targets.yaml",\n  "experiments": [\n'
        '    {"target": "toy", "model": "small", "runs": 0}\n  ]\n}\n'
    )
    code = main(["plan", str(study), "--results-dir", str(project.results)])
    err = capsys.readouterr().err
    assert code == 2
    assert "s.json:5: experiments.0.runs" in err


def test_debug_shows_traceback(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    study = project.write_study([{**DEFAULT, "target": "nope"}])
    code = main(["--debug", "run", str(study), "--results-dir", str(project.results)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" in err
