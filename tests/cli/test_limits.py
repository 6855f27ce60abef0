"""Absurd sizes, durations, nesting, duplicate keys and path-like names: exit 2, one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Project, target_block
from hyperjoule.cli import main

DEFAULT = {"target": "toy", "model": "small", "mode": "default"}


def _text(name: str, text: str) -> Callable[[Project], Path]:
    def make(p: Project) -> Path:
        path = p.root / name
        path.write_text(text)
        return path

    return make


def _escaping_target(p: Project) -> Path:
    p.write_targets({"../../x": target_block()})
    return p.write_study([{**DEFAULT, "target": "../../x"}])


def _parallel_escape(p: Project) -> Path:
    p.write_targets({"toy": target_block(), "../../bg": target_block()})
    experiment = {
        "mode": "parallel",
        "foreground": {"target": "toy", "model": "small"},
        "background": {"target": "../../bg", "model": "small"},
    }
    return p.write_study([experiment])


HEAD = "name: s\ntargets: targets.yaml\nallow_estimates: true\nexperiments:\n"
CASES: dict[str, tuple[Callable[[Project], Path], list[str]]] = {
    "a billion runs": (
        lambda p: p.write_study([{**DEFAULT, "runs": 1_000_000_000}]),
        ["s.yaml:", "experiments.0.runs", "less than or equal to 100000"],
    ),
    "too many runs in total": (
        lambda p: p.write_study([{**DEFAULT, "runs": 60_000}, {**DEFAULT, "runs": 60_000}]),
        ["s.yaml:", "experiments.1", "more than 100000 runs"],
    ),
    "absurd retries": (
        lambda p: p.write_study([{**DEFAULT, "max_retries": 10**9}]),
        ["experiments.0.max_retries", "less than or equal to 100"],
    ),
    "infinite cooldown": (
        _text("inf.yaml", HEAD + "  - {target: toy, model: small, cooldown_s: .inf}\n"),
        ["inf.yaml:5", "experiments.0.cooldown_s", "finite"],
    ),
    "absurd cooldown": (
        lambda p: p.write_study([{**DEFAULT, "cooldown_s": 1e10}]),
        ["experiments.0.cooldown_s", "less than or equal to 86400"],
    ),
    "absurd timeout": (
        lambda p: (
            p.write_targets({"toy": target_block(timeout_s=1e12)}),
            p.write_study([DEFAULT]),
        )[1],
        ["targets.yaml:", "targets.toy.timeout_s", "less than or equal"],
    ),
    "study nested 5,000 deep": (
        _text("deep.yaml", HEAD + "".join(" " * i + "a:\n" for i in range(5000))),
        ["deep.yaml:", "nested more than 32 levels"],
    ),
    "JSON nested 100,000 deep": (
        _text("deep.json", '{"name": "s", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ["deep.json:1: x.0.0.0", "nested more than 32 levels"],
    ),
    "duplicate key": (
        _text("dup.yaml", HEAD + "  - target: toy\n    model: small\n    model: large\n"),
        ["dup.yaml:7", "experiments.0.model", "duplicate key (first on line 6)"],
    ),
    "target named like a path": (
        _escaping_target,
        ["targets.yaml:", "../../x", "should match pattern"],
    ),
    "background target named like a path": (
        _parallel_escape,
        ["targets.yaml:", "../../bg", "should match pattern"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_limit_is_refused_with_one_line(
    case: str, project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    make, expected = CASES[case]
    study = make(project)
    code = main(["run", str(study), "--results-dir", str(project.results)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])
    assert not project.results.exists()
    assert not (project.root.parent / "x").exists() and not (project.root.parent / "bg").exists()
