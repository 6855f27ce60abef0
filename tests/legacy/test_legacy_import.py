"""``hyperjoule import``: the lab's measured runs come in once, typed, with honest energy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer

from hyperjoule import cli
from hyperjoule.cli._legacy import register
from hyperjoule.config import canonical_key, load_study
from hyperjoule.errors import ConfigError
from hyperjoule.execution import load_plan_state
from hyperjoule.legacy import (
    DEFAULT_IMPORT_STUDY,
    LEGACY_REASON,
    convert_legacy,
    import_legacy,
    infer_kind,
    legacy_run_id,
    read_legacy_results,
)
from hyperjoule.planning import resolve_hyperparameters
from hyperjoule.records import RunRecord, RunStatus
from hyperjoule.storage import ResultsStore, flat_row

FIXTURES = Path(__file__).parent.parent / "fixtures" / "legacy"
S0, S1, S2 = "run_20251115_165340", "run_20251117_182512", "run_20251118_090000"


@pytest.fixture
def old(tmp_path: Path) -> Path:
    """A copy of the hand-written old result tree (three sessions and raw_data.csv)."""
    return Path(shutil.copytree(FIXTURES / "old_results", tmp_path / "old_results"))


def _by_slot(records: list[RunRecord]) -> dict[tuple[str, str], RunRecord]:
    return {(r.session, r.slot_id): r for r in records}


def _stored(results: Path) -> list[RunRecord]:
    with ResultsStore(results, create=False) as store:
        return list(store.iter_runs())


def _cli(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> int:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    monkeypatch.setattr(cli, "app", app)
    return cli.main(args)


def test_import_reads_every_run_once_and_twice_adds_nothing(old: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    first = import_legacy([old], results)
    # 7 experiment.json + 5 + 2 summary rows + 4 raw_data rows describe 9 distinct runs.
    assert (len(first.imported), len(first.already_present), first.merged_rows) == (9, 0, 9)
    assert first.study == DEFAULT_IMPORT_STUDY
    records = _stored(results)
    assert len(records) == 9
    assert {r.study for r in records} == {"legacy-import"}

    second = import_legacy([old], results)
    assert (len(second.imported), len(second.already_present)) == (0, 9)
    assert [r.to_dict() for r in _stored(results)] == [r.to_dict() for r in records]


def test_every_field_of_a_sequential_run(old: Path, tmp_path: Path) -> None:
    import_legacy([old], tmp_path / "results", timezone="Asia/Shanghai")
    run = _by_slot(_stored(tmp_path / "results"))[(S1, "examples_mnist_001")]
    assert run.run_id == legacy_run_id("examples/mnist@2025-11-17T10:25:12+00:00")
    assert (run.target, run.model, run.mode) == ("examples", "mnist", "default")
    assert run.hyperparameters == {"epochs": 10, "learning_rate": 0.01, "batch_size": 32, "seed": 1}
    assert type(run.hyperparameters["epochs"]) is int
    assert run.mutated == []
    assert (run.status, run.attempts, run.error) == (RunStatus.SUCCEEDED, 1, None)
    # The lab wrote local time: stored in UTC, the text as written kept.
    assert run.started_at == "2025-11-17T10:25:12.123456+00:00"
    assert run.provenance["legacy_timestamp"] == "2025-11-17T18:25:12.123456"
    assert run.provenance["legacy_timezone"] == "Asia/Shanghai"
    assert run.duration_s == 150.2
    assert run.metrics == {"test_accuracy": 96.12, "test_loss": 0.1234}
    gpu, pkg, dram = (run.energy.get(n) for n in ("gpu", "cpu_pkg", "cpu_dram"))
    assert (gpu.energy_j, gpu.method, gpu.sampling_period_s, gpu.devices) == (
        24612.3,
        "integrated",
        1.0,
        [],
    )
    assert (pkg.energy_j, pkg.method) == (5123.4, "counter")
    assert (dram.energy_j, dram.method) == (312.6, "counter")
    assert {c.attribution for c in (gpu, pkg, dram)} == {"exclusive"}
    assert run.energy.total_j == pytest.approx(24612.3 + 5123.4 + 312.6)
    p = run.power
    assert (p.gpu_avg_w, p.gpu_max_w, p.gpu_min_w) == (160.5, 201.0, 45.2)
    assert (p.gpu_temp_avg_c, p.gpu_temp_max_c) == (61.2, 68.0)
    assert (p.gpu_util_avg_pct, p.gpu_util_max_pct) == (88.4, 99.0)
    assert p.sampling_period_s == 1.0
    assert p.samples is None  # the old tool did not say how many: unknown, not 0
    prov = run.provenance
    assert prov["legacy_id"] == "examples_mnist_001@2025-11-17T18:25:12.123456"
    assert prov["imported_from"] == str(
        (old / S1 / "examples_mnist_001" / "experiment.json").resolve()
    )
    assert prov["also_in"] == [str((old / S1 / "summary.csv").resolve())]
    assert prov["hyperparameter_types"] == "inferred"
    assert run.run_dir == str((old / S1 / "examples_mnist_001").resolve())


def test_summary_csv_row_keeps_the_lab_columns(old: Path, tmp_path: Path) -> None:
    import_legacy([old], tmp_path / "results")
    run = _by_slot(_stored(tmp_path / "results"))[(S1, "examples_mnist_001")]
    row = flat_row(run)
    assert row["experiment_id"] == "examples_mnist_001"
    assert (row["repository"], row["model"], row["training_success"]) == (
        "examples",
        "mnist",
        "True",
    )
    assert row["energy_gpu_total_joules"] == 24612.3
    assert row["energy_cpu_total_joules"] == pytest.approx(5436.0)
    assert row["energy_gpu_method"] == "integrated"
    assert row["energy_cpu_pkg_method"] == "counter"
    assert row["hyperparam_epochs"] == 10


def test_oom_run_and_figures_the_old_tool_did_not_record(old: Path, tmp_path: Path) -> None:
    import_legacy([old], tmp_path / "results")
    runs = _by_slot(_stored(tmp_path / "results"))
    failed = runs[(S1, "pytorch_resnet_cifar10_resnet20_003")]
    assert failed.status is RunStatus.OOM  # recognised from the error text
    assert failed.attempts == 3  # retries 2
    assert failed.error == "Training failed: RuntimeError: CUDA out of memory"
    assert failed.hyperparameters == {"weight_decay": 0.0, "optimizer": "adam"}
    assert failed.mutated == ["weight_decay", "optimizer"]
    gpu = failed.energy.get("gpu")
    assert (gpu.energy_j, gpu.method, gpu.reason) == (None, "unavailable", LEGACY_REASON)
    assert failed.energy.get("cpu_pkg").energy_j == 410.0
    assert (failed.power.gpu_avg_w, failed.power.reason) == (None, LEGACY_REASON)

    mrt = runs[(S1, "MRT-OAST_default_004")]  # model "default": no model
    assert (mrt.model, mrt.mode, mrt.hyperparameters) == (None, "default", {})
    assert mrt.provenance["legacy_model"] == "default"
    assert mrt.energy.get("gpu").method == "unavailable"  # GPU keys absent altogether
    assert mrt.metrics == {"f1": 0.912}  # "n/a" is no value


def test_nested_parallel_results(old: Path, tmp_path: Path) -> None:
    import_legacy([old], tmp_path / "results")
    runs = _by_slot(_stored(tmp_path / "results"))
    par = runs[(S1, "examples_mnist_ff_005_parallel")]
    assert (par.target, par.model, par.mode) == ("examples", "mnist_ff", "parallel")
    assert par.hyperparameters == {"epochs": 8}
    assert par.metrics == {"test_accuracy": 91.5}
    assert par.duration_s == 8.7
    gpu = par.energy.get("gpu")
    assert (gpu.energy_j, gpu.attribution) == (2005.4, "combined")  # foreground + background
    assert par.energy.get("cpu_pkg").attribution == "combined"
    assert par.power.gpu_max_w == 280.0
    assert par.background is not None
    assert par.background["target"] == "pytorch_resnet_cifar10"
    assert par.background["model"] == "resnet20"
    assert par.background["hyperparameters"] == {"epochs": 200, "learning_rate": 0.1}
    # the same run's raw_data.csv row (fg_/bg_ columns) was merged into it
    assert str((old / "raw_data.csv").resolve()) in par.provenance["also_in"]

    early = runs[(S0, "examples_mnist_ff_001_parallel")]  # foreground_result/background_info
    assert (early.mode, early.hyperparameters) == ("parallel", {"learning_rate": 0.02})
    assert early.energy.get("gpu").energy_j == 1850.0
    assert early.background is not None and early.background["target"] == "pytorch_resnet_cifar10"

    only_csv = runs[(S0, "examples_mnist_rnn_002_parallel")]  # raw_data.csv only
    assert (only_csv.target, only_csv.model, only_csv.status) == (
        "examples",
        "mnist_rnn",
        RunStatus.FAILED,
    )
    assert only_csv.hyperparameters == {"epochs": 11}
    assert only_csv.energy.get("cpu_dram").energy_j == 610.0
    assert only_csv.energy.get("gpu").method == "unavailable"
    assert only_csv.background is not None
    assert (only_csv.background["target"], only_csv.background["model"]) == ("VulBERTa", "cnn")


def test_ids_restarted_every_session_are_still_distinct_runs(old: Path, tmp_path: Path) -> None:
    import_legacy([old], tmp_path / "results")
    runs = _by_slot(_stored(tmp_path / "results"))
    first, later = runs[(S1, "examples_mnist_001")], runs[(S2, "examples_mnist_001")]
    assert first.run_id != later.run_id
    assert later.mode == "mutation"
    assert later.hyperparameters == {"epochs": 15, "learning_rate": 0.02}


def test_duplicate_rows_are_one_run(old: Path) -> None:
    records, merged, _ = read_legacy_results([old / S2 / "summary.csv"], timezone="UTC")
    assert (len(records), merged) == (1, 1)
    assert records[0].run_id == legacy_run_id("examples/mnist@2025-11-18T09:00:05+00:00")


def test_a_run_in_a_csv_and_its_json_is_one_run(old: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    from_csv = import_legacy([old / S1 / "summary.csv"], results)
    assert len(from_csv.imported) == 5
    # The space-separated timestamp of examples_mnist_001 in the CSV names the same run.
    from_json = import_legacy(sorted((old / S1).glob("*/experiment.json")), results)
    # Each JSON brings fields the CSV row lacked, so the runs are described further.
    rnn = [r.run_id for r in _stored(results) if r.slot_id == "examples_mnist_rnn_006"]
    assert set(from_json.updated) | set(from_json.already_present) == set(from_csv.imported) - set(
        rnn
    )
    assert len(from_json.imported) == 1  # the parallel run the old summary lost
    assert len(_stored(results)) == 6


def test_values_are_typed(old: Path) -> None:
    records, _, _ = read_legacy_results([old / S1 / "summary.csv"])
    runs = {r.slot_id: r for r in records}
    # "7.0" and "7.000000" of hyperparameters written elsewhere as integers are ints
    assert runs["examples_mnist_002"].hyperparameters == {"epochs": 7, "learning_rate": 0.005}
    assert type(runs["examples_mnist_002"].hyperparameters["epochs"]) is int
    assert runs["examples_mnist_rnn_006"].hyperparameters == {"epochs": 12, "seed": 7}
    assert runs["pytorch_resnet_cifar10_resnet20_003"].hyperparameters["weight_decay"] == 0.0
    assert runs["examples_mnist_001"].metrics == {"test_accuracy": 96.12, "test_loss": 0.1234}


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([7, "7.000000", "12"], "int"),
        (["7.0", "8.0"], "float"),
        ([0.5, "1"], "float"),
        ([True, "false"], "bool"),
        (["adam", "sgd"], "str"),
        (["1", "adam"], "str"),
    ],
)
def test_infer_kind(values: list[object], kind: str) -> None:
    assert infer_kind(values) == kind


def _converted_targets(tmp_path: Path) -> Path:
    lab = Path(shutil.copytree(FIXTURES / "lab", tmp_path / "lab"))
    result = convert_legacy(
        lab / "config" / "models_config.json",
        [lab / "settings" / "default.json"],
        lab / "hj",
        legacy_root=lab,
    )
    return result.targets_path


def test_declared_types_and_defaults(old: Path, tmp_path: Path) -> None:
    targets = _converted_targets(tmp_path)
    records, _, warnings = read_legacy_results([old / S1 / "summary.csv"], targets=targets)
    runs = {r.slot_id: r for r in records}
    mnist = runs["examples_mnist_002"]
    # the old tool stored only what it mutated; the declared defaults fill the rest
    assert mnist.hyperparameters == {
        "epochs": 7,
        "learning_rate": 0.005,
        "batch_size": 32,
        "seed": 1,
    }
    assert mnist.provenance["defaults_filled"] == ["batch_size", "seed"]
    assert mnist.mutated == ["epochs", "learning_rate"]
    resnet = runs["pytorch_resnet_cifar10_resnet20_003"]
    assert resnet.hyperparameters["epochs"] == 200
    assert resnet.provenance["hyperparameter_types"] == f"declared in {targets}"
    assert warnings == []


def test_imported_configurations_are_left_out_of_new_plans(old: Path, tmp_path: Path) -> None:
    targets = _converted_targets(tmp_path)
    results = tmp_path / "results"
    import_legacy([old], results, targets=targets)
    loaded = load_study(targets.parent / "default.yaml")
    state = load_plan_state(loaded, None, save=False)
    mnist_default = next(s for s in state.specs if s.model == "mnist")
    with ResultsStore(results) as store:
        assert mnist_default.dedup_key in store.measured_keys("examples", "mnist")
    expected = canonical_key(
        "examples",
        "mnist",
        "default",
        resolve_hyperparameters(loaded.targets["examples"], {}),
        loaded.targets["examples"].hyperparameters,
    )
    assert mnist_default.dedup_key == expected


def test_mutation_never_replans_an_imported_configuration(tmp_path: Path) -> None:
    """A three-value space, two values measured by the old tool: the plan takes the third."""
    (tmp_path / "repo").mkdir()
    registry = {
        "models": {
            "toy": {
                "path": "repo",
                "train_script": "train.py",
                "supported_hyperparams": {
                    "batch": {"flag": "-b", "type": "int", "default": 8, "choices": [8, 16, 32, 64]}
                },
            }
        }
    }
    settings = {
        "experiment_name": "more",
        "mode": "mutation",
        "runs_per_config": 1,
        "experiments": [{"repo": "toy", "model": "default", "mutate": ["batch"]}],
    }
    (tmp_path / "models_config.json").write_text(json.dumps(registry))
    (tmp_path / "more.json").write_text(json.dumps(settings))
    conv = convert_legacy(tmp_path / "models_config.json", [tmp_path / "more.json"], tmp_path)
    csv_text = (
        "experiment_id,timestamp,repository,model,training_success,duration_seconds,retries,"
        "hyperparam_batch\n"
        "toy_default_001,2025-11-17T10:00:00,toy,default,True,5.0,0,16.0\n"
        "toy_default_002,2025-11-17T10:01:00,toy,default,True,5.0,0,32\n"
    )
    run_dir = tmp_path / "old" / "run_20251117_100000"
    run_dir.mkdir(parents=True)
    (run_dir / "summary.csv").write_text(csv_text)
    results = tmp_path / "results"
    import_legacy([tmp_path / "old"], results, targets=conv.targets_path)
    loaded = load_study(conv.study_paths[0])
    with ResultsStore(results) as store:
        specs = load_plan_state(loaded, store, save=False).specs
    assert [s.hyperparameters["batch"] for s in specs] == [64]


# -- bad input --------------------------------------------------------------------------------


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


HEADER = "experiment_id,timestamp,repository,model,training_success,duration_seconds,retries\n"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("run_1/x/experiment.json", '{"experiment_id": ', ["experiment.json:1:", "invalid JSON"]),
        ("run_1/x/experiment.json", '{"timestamp": "2025-01-01"}', ["experiment_id: required"]),
        (
            "run_1/x/experiment.json",
            '{"experiment_id": "x", "timestamp": "t", "training_success": "maybe"}',
            ["training_success", "not true or false"],
        ),
        (
            "run_1/x/experiment.json",
            '{"experiment_id": "x", "timestamp": "t", "foreground": [1]}',
            ["foreground", "expected the foreground run"],
        ),
        (
            "run_1/summary.csv",
            HEADER.strip() + ",energy_gpu_total_joules\nx,t,toy,a,True,1.0,0,lots\n",
            ["summary.csv:2: energy_gpu_total_joules", "not a number"],
        ),
        ("run_1/summary.csv", HEADER + ",t,toy,a,True,1.0,0\n", ["summary.csv:2: experiment_id"]),
        (
            "run_1/notes.txt",
            "nothing here",
            ["no experiment.json or results CSV found"],
        ),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    text: str,
    expected: list[str],
) -> None:
    old = tmp_path / "old"
    _write(old / name, text)
    # A good run next to the bad file: it must not be written either.
    shutil.copytree(FIXTURES / "old_results" / S2, old / S2)
    if name.endswith(".txt"):
        shutil.rmtree(old / S2)
    results = tmp_path / "results"
    code = _cli(monkeypatch, ["import", str(old), "--results-dir", str(results)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hyperjoule: error: ")
    for fragment in expected:
        assert fragment in lines[0]
    assert not results.exists()


def test_missing_source_and_bad_study_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="legacy results not found") as info:
        read_legacy_results([tmp_path / "nope"])
    assert info.value.path == tmp_path / "nope"
    with pytest.raises(ConfigError, match="not a study name"):
        read_legacy_results([FIXTURES / "old_results"], study="my study")
    with pytest.raises(ConfigError, match="targets file not found"):
        read_legacy_results([FIXTURES / "old_results"], targets=tmp_path / "targets.yaml")


def test_wrongly_typed_value_for_a_declared_int(old: Path, tmp_path: Path) -> None:
    targets = _converted_targets(tmp_path)
    bad = tmp_path / "bad" / "run_2" / "summary.csv"
    _write(
        bad,
        "experiment_id,timestamp,repository,model,training_success,hyperparam_epochs\n"
        "x,2025-01-01T00:00:00,examples,mnist,True,7.5\n",
    )
    with pytest.raises(ConfigError, match="not an integer") as info:
        read_legacy_results([bad], targets=targets)
    assert info.value.field == "x.hyperparameters.epochs"


# -- the command line -------------------------------------------------------------------------


def test_cli_import(
    old: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    args = ["import", str(old / S1), str(old / "raw_data.csv"), "--results-dir", str(results)]
    assert _cli(monkeypatch, [*args, "--study", "lab-2025"]) == 0
    captured = capsys.readouterr()
    assert "imported 8 run(s) into study 'lab-2025'" in captured.out
    assert all(line.startswith("warning: ") for line in captured.err.splitlines())
    assert {r.study for r in _stored(results)} == {"lab-2025"}

    assert _cli(monkeypatch, [*args, "--study", "lab-2025"]) == 0
    again = capsys.readouterr().out
    assert "imported 0 run(s)" in again and "8 already there" in again
    assert len(_stored(results)) == 8

    targets = _converted_targets(tmp_path)
    assert (
        _cli(
            monkeypatch,
            ["import", str(old), "--results-dir", str(results), "--targets", str(targets)],
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "imported 1 run(s) into study 'legacy-import'" in out  # only session 2 was new


def test_unimportable_figures_are_reported(tmp_path: Path) -> None:
    record = {
        "experiment_id": "examples_mnist_009",
        "timestamp": "2025-11-20T10:00:00",
        "repository": "examples",
        "model": "mnist",
        "hyperparameters": {},
        "training_success": True,
        "energy_metrics": {"cpu_energy_total_joules": 900.0, "gpu_energy_kwh": 0.01},
        "performance_metrics": {"test_accuracy": "high"},
    }
    path = _write(tmp_path / "run_9" / "x" / "experiment.json", json.dumps(record))
    records, _, warnings = read_legacy_results([path])
    keys = {w.key: w.message for w in warnings}
    assert "not imported" in keys["energy_metrics.gpu_energy_kwh"]
    assert "cannot be attributed" in keys["energy_metrics.cpu_energy_total_joules"]
    assert "not a number" in keys["performance_metrics.test_accuracy"]
    run = records[0]
    assert run.energy.get("cpu_pkg").method == "unavailable"
    assert run.energy.total_j is None  # never a silent zero
    assert run.metrics == {}
    assert run.mode == "default"  # no mode and nothing mutated
