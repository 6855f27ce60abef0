"""``hyperjoule convert``: the lab's registry and settings become targets and studies that plan."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from hyperjoule import cli
from hyperjoule.cli._legacy import register
from hyperjoule.config import (
    MutationExperiment,
    ParallelExperiment,
    load_study,
    load_targets,
)
from hyperjoule.errors import ConfigError, HyperjouleError
from hyperjoule.execution import build_argv, load_plan_state
from hyperjoule.legacy import LEGACY_COOLDOWN_S, convert_legacy
from hyperjoule.legacy._registry import _command

FIXTURES = Path(__file__).parent.parent / "fixtures" / "legacy"


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """A copy of the hand-written lab tree: config/, settings/, repos/."""
    return Path(shutil.copytree(FIXTURES / "lab", tmp_path / "lab"))


def _convert(lab: Path, *settings: str) -> tuple[Path, list[tuple[str, str]]]:
    out = lab / "converted"
    result = convert_legacy(
        lab / "config" / "models_config.json",
        [lab / "settings" / f"{name}.json" for name in settings],
        out,
        legacy_root=lab,
    )
    return out, [(w.path.name, w.key) for w in result.warnings]


def _cli(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> int:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    monkeypatch.setattr(cli, "app", app)
    return cli.main(args)


# -- models_config.json → targets.yaml ------------------------------------------------------


def test_registry_fields_map_to_targets(lab: Path) -> None:
    out, _ = _convert(lab)
    targets = load_targets(out / "targets.yaml")
    assert list(targets) == [
        "examples",
        "pytorch_resnet_cifar10",
        "MRT-OAST",
        "bug-localization-by-dnn-and-rvsm",
    ]
    ex = targets["examples"]
    assert ex.workdir == (lab / "repos" / "examples").resolve()
    assert ex.command == ["bash", "./train.sh"]
    assert ex.models == ["mnist", "mnist_ff", "mnist_rnn", "siamese"]
    assert ex.model_flag == "-n"
    # required_args values are argument strings, split like a shell would
    assert ex.args == ["--data-dir", "../data/mnist", "--log-interval", "50", "--no-save"]
    epochs = ex.hyperparameters["epochs"]
    assert (epochs.flag, epochs.type, epochs.default, epochs.range) == ("-e", "int", 10, (5, 20))
    assert epochs.distribution == "uniform"
    lr = ex.hyperparameters["learning_rate"]
    assert (lr.type, lr.distribution, lr.range) == ("float", "log_uniform", (0.001, 0.1))
    batch = ex.hyperparameters["batch_size"]  # an int restricted to a few values
    assert (batch.type, batch.choices, batch.default) == ("choice", [16, 32, 64, 128], 32)
    assert ex.metrics["test_accuracy"].regex == r"Test Accuracy:\s*([0-9.]+)"
    assert {m.match for m in ex.metrics.values()} == {"last"}
    assert ex.required_metrics == []

    resnet = targets["pytorch_resnet_cifar10"]
    assert resnet.args == []
    wd = resnet.hyperparameters["weight_decay"]
    assert (wd.distribution, wd.zero_probability, wd.range) == ("log_uniform", 0.3, (1e-05, 0.01))
    optim = resnet.hyperparameters["optimizer"]
    assert (optim.type, optim.choices, optim.default) == ("choice", ["sgd", "adam"], "sgd")

    mrt = targets["MRT-OAST"]  # no models key at all: one model, no flag
    assert mrt.command == ["{python}", "main_batch.py"]
    assert mrt.args == ["--data", "../data/oast", "--mode", "train"]
    assert (mrt.models, mrt.model_flag) == (None, None)
    assert list(mrt.hyperparameters) == ["epochs", "dropout"]  # lr_schedule reported
    assert list(mrt.metrics) == ["f1"]  # precision's regex has no group: reported

    bug = targets["bug-localization-by-dnn-and-rvsm"]  # models: ["default"] means no flag
    assert (bug.models, bug.model_flag) == (None, None)


def test_workdirs_are_relative_to_the_written_targets_file(lab: Path) -> None:
    out, _ = _convert(lab)
    data = yaml.safe_load((out / "targets.yaml").read_text())
    assert data["targets"]["examples"]["workdir"] == "../repos/examples"


def test_legacy_root_defaults_to_the_registry_directory(lab: Path) -> None:
    registry = lab / "models_config.json"
    shutil.copy(lab / "config" / "models_config.json", registry)
    convert_legacy(registry, [], lab / "out")
    assert (
        load_targets(lab / "out" / "targets.yaml")["examples"].workdir
        == (lab / "repos" / "examples").resolve()
    )


@pytest.mark.parametrize(
    ("script", "command"),
    [
        ("train.py", ["{python}", "train.py"]),
        ("./scripts/train.sh", ["bash", "./scripts/train.sh"]),
        ("train", ["./train"]),
        ("bin/train", ["bin/train"]),
        ("python3 main.py --fast", ["{python}", "main.py", "--fast"]),
    ],
)
def test_train_script_becomes_a_command(script: str, command: list[str]) -> None:
    assert _command(script) == command


# -- settings/*.json → studies ------------------------------------------------------------


def test_default_settings(lab: Path) -> None:
    out, _ = _convert(lab, "default")
    loaded = load_study(out / "default.yaml")
    study = loaded.study
    assert study.name == "default-baseline-all-models"  # sanitised experiment_name
    assert (study.defaults.runs, study.defaults.max_retries) == (2, 1)
    assert study.defaults.cooldown_s == LEGACY_COOLDOWN_S
    assert study.system.cpu_governor == "performance"
    first, second, third, fourth = study.experiments
    assert (first.mode, first.target, first.model, first.runs) == (
        "default",
        "examples",
        "mnist",
        None,
    )
    assert second.hyperparameters == {"epochs": 5, "batch_size": 64}  # "64" typed as the choice
    assert (third.target, third.model, third.runs) == ("MRT-OAST", None, 1)
    assert (fourth.model, fourth.max_retries) == (None, 0)  # model "default": no model
    text = (out / "default.yaml").read_text()
    assert "# Every model once with its default hyperparameters, twice each." in text


def test_mutation_settings(lab: Path) -> None:
    out, _ = _convert(lab, "mutation")
    study = load_study(out / "mutation.yaml").study
    assert study.name == "mutation_2x_safe"
    assert (study.defaults.runs, study.defaults.max_retries) == (3, 2)
    exps = study.experiments
    assert len(exps) == 5  # the 'lenet' experiment (unknown model) is left out
    mnist, resnet, rnn, mrt, siamese = exps
    assert isinstance(mnist, MutationExperiment)
    assert (mnist.mutate, mnist.strategy) == (["epochs", "learning_rate"], "joint")
    assert isinstance(resnet, MutationExperiment)
    assert (resnet.mutate, resnet.runs, resnet.max_retries) == ("all", 2, 0)  # ["all"]
    assert isinstance(rnn, MutationExperiment)
    assert rnn.mutate == ["seed"]  # mutate_params is reported, not translated
    assert rnn.hyperparameters == {"epochs": 7}  # "7.0" of an int; seed dropped (mutated)
    assert isinstance(mrt, MutationExperiment)
    assert (mrt.target, mrt.model, mrt.mutate) == ("MRT-OAST", None, ["epochs"])
    assert (siamese.mode, siamese.runs) == ("default", 1)  # per-experiment mode wins


def test_parallel_settings(lab: Path) -> None:
    out, _ = _convert(lab, "parallel")
    study = load_study(out / "parallel.yaml").study
    assert study.defaults.runs == 3
    first, second, third = study.experiments
    assert isinstance(first, ParallelExperiment)
    assert first.foreground.target == "pytorch_resnet_cifar10"
    assert (first.foreground.mutate, first.foreground.strategy) == (
        ["epochs", "learning_rate"],
        "joint",
    )
    assert first.backgrounds[0].hyperparameters == {"epochs": 20, "learning_rate": 0.05}
    assert isinstance(second, ParallelExperiment)
    assert (second.foreground.mutate, second.foreground.runs) == ("all", 1)
    assert second.backgrounds[0].hyperparameters == {}
    assert isinstance(third, ParallelExperiment)
    assert third.foreground.mutate is None  # no mutate: the defaults, runs times
    assert (third.foreground.model, third.backgrounds[0].model) == (None, None)
    assert third.max_retries == 1  # given on the foreground, belongs to the experiment


def test_keys_that_cannot_be_expressed_are_reported(lab: Path) -> None:
    out, warnings = _convert(lab, "default", "mutation", "parallel")
    assert warnings == [
        ("models_config.json", "models.MRT-OAST.timeout"),
        ("models_config.json", "models.MRT-OAST.supported_hyperparams.lr_schedule.type"),
        ("models_config.json", "models.MRT-OAST.performance_metrics.primary_metric"),
        ("models_config.json", "models.MRT-OAST.performance_metrics.log_patterns.precision"),
        ("models_config.json", "models.bug-localization-by-dnn-and-rvsm.model_flag"),
        ("default.json", "experiment_name"),
        ("mutation.json", "use_deduplication"),
        ("mutation.json", "historical_csvs"),
        ("mutation.json", "experiments.2.mutate_params"),
        ("mutation.json", "experiments.2.hyperparameters.seed"),
        ("mutation.json", "experiments.3.model"),
        ("mutation.json", "experiments.4.mutate.1"),
        ("parallel.json", "experiments.2.background.mutate"),
    ]
    # The reports also stay with the converted files, as comments.
    text = (out / "mutation.yaml").read_text()
    assert "#   experiments.2.mutate_params: the old tool ignored this key" in text
    assert "results/summary_old.csv" in text
    assert "#   models.MRT-OAST.timeout: unknown key" in (out / "targets.yaml").read_text()


def test_converted_studies_plan(lab: Path) -> None:
    out, _ = _convert(lab, "default", "mutation", "parallel")
    counts = {}
    for name in ("default", "mutation", "parallel"):
        loaded = load_study(out / f"{name}.yaml")
        state = load_plan_state(loaded, None, save=False)
        counts[name] = len(state.specs)
        for spec in state.specs:
            assert spec.dedup_key
            if spec.mode == "mutation":
                assert spec.mutated
    assert counts == {
        "default": 2 + 2 + 1 + 2,
        "mutation": 3 + 2 + 3 + 3 + 1,
        "parallel": 3 + 1 + 3,
    }
    parallel = load_plan_state(load_study(out / "parallel.yaml"), None, save=False).specs
    assert {s.mode for s in parallel} == {"parallel"}
    assert parallel[0].background[0].target == "examples"
    assert parallel[0].background[0].hyperparameters["epochs"] == 20


def test_unexpressible_hyperparameter_is_left_out_and_its_uses_reported(tmp_path: Path) -> None:
    registry = {
        "models": {
            "toy": {
                "path": ".",
                "train_script": "train.py",
                "supported_hyperparams": {
                    "epochs": {"flag": "--epochs", "type": "int", "default": 3, "range": [1, 9]},
                    "wd": {
                        "flag": "--wd",
                        "type": "float",
                        "default": 0.0,
                        "range": [0.0, 0.01],
                        "distribution": "log_uniform",
                    },
                },
            }
        }
    }
    settings = {
        "experiment_name": "s",
        "mode": "mutation",
        "experiments": [
            {"repo": "toy", "mutate": ["epochs", "wd"], "hyperparameters": {"wd": 0.1}}
        ],
    }
    (tmp_path / "models_config.json").write_text(json.dumps(registry))
    (tmp_path / "s.json").write_text(json.dumps(settings))
    result = convert_legacy(tmp_path / "models_config.json", [tmp_path / "s.json"], tmp_path / "o")
    messages = {w.key: w.message for w in result.warnings}
    assert "log_uniform needs a range above 0" in messages["models.toy.supported_hyperparams.wd"]
    assert "left out of the targets" in messages["experiments.0.mutate.1"]
    assert "left out of the targets" in messages["experiments.0.hyperparameters.wd"]
    study = load_study(tmp_path / "o" / "s.yaml").study
    assert study.experiments[0].mutate == ["epochs"]  # type: ignore[union-attr]


# -- bad input: exit 2, one line, nothing written -----------------------------------------


def _bad(tmp_path: Path, registry: Any, settings: Any = None) -> tuple[Path, list[Path]]:
    reg = tmp_path / "models_config.json"
    reg.write_text(registry if isinstance(registry, str) else json.dumps(registry))
    paths = []
    if settings is not None:
        paths.append(tmp_path / "bad.json")
        paths[0].write_text(settings if isinstance(settings, str) else json.dumps(settings))
    return reg, paths


GOOD = {"models": {"toy": {"path": ".", "train_script": "train.py"}}}


@pytest.mark.parametrize(
    ("registry", "settings", "expected"),
    [
        ('{"models": {', None, ["models_config.json:1:", "invalid JSON"]),
        ({"models": []}, None, ["models: required"]),
        ({"models": {"toy": {"path": "."}}}, None, ["models.toy.train_script", "required"]),
        (
            {"models": {"toy": {"path": ".", "train_script": "t.py", "models": ["a", "b"]}}},
            None,
            ["models.toy.model_flag", "no model_flag"],
        ),
        (
            {
                "models": {
                    "toy": {
                        "path": ".",
                        "train_script": "t.py",
                        "supported_hyperparams": {"lr": {"type": "float", "default": 0.1}},
                    }
                }
            },
            None,
            ["supported_hyperparams.lr.flag", "required"],
        ),
        (GOOD, "[1, 2]", ["bad.json", "experiments.0", "must be an object"]),
        (GOOD, '"text"', ["bad.json", "list of them"]),
        (GOOD, {"experiments": [{"repo": "toyy"}]}, ["experiments.0.repo", "'toyy'", "toy"]),
        (GOOD, {"experiments": []}, ["experiments: required"]),
        (GOOD, {"runs_per_config": 0, "experiments": [{"repo": "toy"}]}, ["runs_per_config"]),
        (
            {
                "models": {
                    "toy": {
                        "path": ".",
                        "train_script": "t.py",
                        "supported_hyperparams": {
                            "e": {"flag": "-e", "type": "int", "default": 1, "range": [1, 5]}
                        },
                    }
                }
            },
            {"experiments": [{"repo": "toy", "hyperparameters": {"e": "many"}}]},
            ["experiments.0.hyperparameters.e", "not a number"],
        ),
        (
            GOOD,
            {"experiments": [{"repo": "toy", "model": "lenet"}]},
            ["experiments: no experiment could be converted"],
        ),
        (
            GOOD,
            {"mode": "parallel", "experiments": [{"repo": "toy"}]},
            ["experiments.0.foreground"],
        ),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    registry: Any,
    settings: Any,
    expected: list[str],
) -> None:
    reg, paths = _bad(tmp_path, registry, settings)
    out = tmp_path / "out"
    code = _cli(monkeypatch, ["convert", str(reg), *map(str, paths), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("hyperjoule: error: ")
    for fragment in expected:
        assert fragment in lines[0]
    assert not out.exists()


def test_missing_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="models config not found"):
        convert_legacy(tmp_path / "nope.json", [], tmp_path / "out")
    (tmp_path / "models_config.json").write_text(json.dumps(GOOD))
    with pytest.raises(ConfigError, match="settings file not found") as info:
        convert_legacy(tmp_path / "models_config.json", [tmp_path / "x.json"], tmp_path / "out")
    assert info.value.path == tmp_path / "x.json"
    assert not (tmp_path / "out").exists()


def test_existing_output_is_kept_unless_forced(lab: Path) -> None:
    out, _ = _convert(lab, "default")
    (out / "default.yaml").write_text("# mine\n")
    with pytest.raises(HyperjouleError, match="exists already; pass --force"):
        _convert(lab, "default")
    assert (out / "default.yaml").read_text() == "# mine\n"
    convert_legacy(
        lab / "config" / "models_config.json",
        [lab / "settings" / "default.json"],
        out,
        legacy_root=lab,
        overwrite=True,
    )
    assert load_study(out / "default.yaml").name == "default-baseline-all-models"


def test_same_study_name_twice_is_made_unique(lab: Path) -> None:
    copy = lab / "other" / "default.json"
    copy.parent.mkdir()
    shutil.copy(lab / "settings" / "default.json", copy)
    result = convert_legacy(
        lab / "config" / "models_config.json",
        [lab / "settings" / "default.json", copy],
        lab / "out",
        legacy_root=lab,
    )
    names = [load_study(p).name for p in result.study_paths]
    assert names == ["default-baseline-all-models", "default-baseline-all-models-2"]
    assert [p.name for p in result.study_paths] == ["default.yaml", "default-2.yaml"]


# -- the command line -----------------------------------------------------------------------


def test_cli_convert(
    lab: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = lab / "hj"
    args = ["convert", str(lab / "config" / "models_config.json")]
    args += [str(lab / "settings" / f"{n}.json") for n in ("default", "mutation", "parallel")]
    code = _cli(monkeypatch, [*args, "-o", str(out), "--legacy-root", str(lab)])
    captured = capsys.readouterr()
    assert code == 0
    warnings = captured.err.splitlines()
    assert len(warnings) == 13
    assert all(line.startswith("warning: ") for line in warnings)
    assert any(
        line.startswith(
            f"warning: {lab / 'settings' / 'mutation.json'}: experiments.2.mutate_params: "
        )
        for line in warnings
    )
    assert f"wrote {out / 'targets.yaml'}" in captured.out
    assert f"next: hyperjoule plan {out / 'parallel.yaml'}" in captured.out
    for name in ("default", "mutation", "parallel"):
        load_study(out / f"{name}.yaml")


# -- the lab's real shapes: nonparallel, comments, list files, one bad file -----------------


def test_nonparallel_mode_converts_as_mutation_with_a_note(lab: Path) -> None:
    out, warnings = _convert(lab, "stage7_nonparallel")
    study = load_study(out / "stage7_nonparallel.yaml").study
    assert [e.mode for e in study.experiments] == ["mutation"] * 3
    assert [e.mutate for e in study.experiments if isinstance(e, MutationExperiment)] == [
        ["epochs"],
        ["learning_rate"],
        ["epochs"],
    ]
    assert ("stage7_nonparallel.json", "mode") in warnings
    assert ("stage7_nonparallel.json", "experiments.4.mode") in warnings


def test_comment_entries_and_keys_make_one_summary_line(lab: Path) -> None:
    result = convert_legacy(
        lab / "config" / "models_config.json",
        [lab / "settings" / "stage7_nonparallel.json"],
        lab / "out",
        legacy_root=lab,
    )
    comment_lines = [w for w in result.warnings if "comment" in w.message]
    assert len(comment_lines) == 1
    assert "2 comment-only experiment(s) and 2 comment key(s) dropped" in comment_lines[0].message
    assert not any("comment" in w.key for w in result.warnings)


def test_a_top_level_list_is_the_experiment_list(lab: Path) -> None:
    out, warnings = _convert(lab, "stage8_list")
    study = load_study(out / "stage8_list.yaml").study
    assert study.name == "stage8_list"
    assert [(e.target, e.model, e.mode) for e in study.experiments] == [
        ("examples", "siamese", "mutation"),
        ("MRT-OAST", None, "default"),
    ]
    assert [k for f, k in warnings if f == "stage8_list.json"] == [""]  # comment summary


def test_one_bad_settings_file_is_reported_and_the_others_written(
    lab: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ("default", "stage9_broken", "stage7_nonparallel", "stage8_list", "mutation")
    args = ["convert", str(lab / "config" / "models_config.json")]
    args += [str(lab / "settings" / f"{n}.json") for n in names]
    code = _cli(monkeypatch, [*args, "-o", str(lab / "hj")])
    captured = capsys.readouterr()
    assert code == 0
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "stage9_broken.json: experiments.0.repo: repository 'VulBERTa'" in errors[0]
    assert "1 settings file(s) could not be converted (listed above); 4 converted" in captured.out
    assert not (lab / "hj" / "stage9_broken.yaml").exists()
    for name in names:
        if name != "stage9_broken":
            assert load_study(lab / "hj" / f"{name}.yaml").study.experiments


def test_nothing_written_when_no_settings_file_converts(lab: Path) -> None:
    bad = lab / "settings" / "stage9_broken.json"
    with pytest.raises(ConfigError, match="1 other settings file"):
        convert_legacy(lab / "config" / "models_config.json", [bad, lab / "nope.json"], lab / "o")
    assert not (lab / "o").exists()


def test_legacy_root_is_found_one_level_above_config(lab: Path) -> None:
    # The lab keeps config/models_config.json and repos/ side by side under one root.
    result = convert_legacy(lab / "config" / "models_config.json", [], lab / "out")
    assert result.legacy_root == lab
    assert (
        load_targets(lab / "out" / "targets.yaml")["examples"].workdir
        == (lab / "repos" / "examples").resolve()
    )


def test_braces_in_old_arguments_stay_literal(lab: Path) -> None:
    registry = lab / "config" / "models_config.json"
    data = json.loads(registry.read_text())
    data["models"]["MRT-OAST"]["required_args"] += " --opts '{\"k\": 1}'"
    registry.write_text(json.dumps(data))
    out, _ = _convert(lab)
    mrt = load_targets(out / "targets.yaml")["MRT-OAST"]  # loads: no unknown placeholder
    argv = build_argv(mrt, None, {"epochs": 10, "dropout": 0.2})
    assert argv[argv.index("--opts") + 1] == '{"k": 1}'


def test_comment_keys_of_the_registry_make_one_summary_line(lab: Path) -> None:
    registry = lab / "config" / "models_config.json"
    data = json.loads(registry.read_text())
    data["comment"] = "registry of the six repositories"
    data["models"] = {"_comment": "--- MNIST family ---", **data["models"]}
    data["models"]["examples"]["comment"] = "one repo, four models"
    data["models"]["examples"]["supported_hyperparams"]["epochs"]["comment"] = "fast"
    registry.write_text(json.dumps(data))
    result = convert_legacy(registry, [], lab / "out")
    lines = [w for w in result.warnings if "comment" in w.message or "comment" in w.key]
    assert [(w.key, w.message) for w in lines] == [
        ("", "1 comment-only entry and 3 comment keys dropped")
    ]
    assert "examples" in load_targets(lab / "out" / "targets.yaml")
