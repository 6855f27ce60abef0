"""``hyperjoule import``: the lab's measured runs → records of an imported study.

Every source is read, typed and turned into a :class:`~hyperjoule.records.RunRecord`
before the database is opened, so a bad input writes nothing. Run ids are derived from
the old run's identity, so importing the same runs again (from the same or another of
the files that describe them) adds nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hyperjoule.config import Target, TargetsFile
from hyperjoule.errors import ConfigError
from hyperjoule.legacy._formats import LegacyWarning, merge_warnings
from hyperjoule.legacy._registry import DEFAULT_MODEL
from hyperjoule.legacy._results import LegacyRun, read_csv, read_experiment_json
from hyperjoule.legacy._typing import ValueTyper
from hyperjoule.records import (
    EnergyBlock,
    EnergyComponent,
    HyperValue,
    PowerBlock,
    RunRecord,
    RunStatus,
)
from hyperjoule.storage import DB_FILENAME, ResultsStore

__all__ = [
    "DEFAULT_IMPORT_STUDY",
    "LEGACY_REASON",
    "ImportResult",
    "import_legacy",
    "legacy_run_id",
    "read_legacy_results",
]

logger = logging.getLogger(__name__)

DEFAULT_IMPORT_STUDY = "legacy-import"
"""Study that imported runs belong to unless another is named."""

LEGACY_REASON = "not recorded by the legacy tool"
"""Reason given for every figure the old files do not hold."""

LEGACY_GPU_PERIOD_S = 1.0
"""The old tool polled nvidia-smi once a second and summed the samples as joules."""

_RESULT_NAMES = ("experiment.json", "summary.csv", "raw_data.csv")
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_legacy` did.

    Attributes:
        study: The study the runs were imported into.
        database: The results database.
        imported: Run ids added now.
        already_present: Run ids found in the database already (an earlier import).
        merged_rows: Descriptions of a run that another file or row described already.
        warnings: What could not be imported, one entry per key (repeats merged).
    """

    study: str
    database: Path
    imported: list[str]
    already_present: list[str]
    merged_rows: int
    warnings: list[LegacyWarning]


def legacy_run_id(legacy_id: str) -> str:
    """The hyperjoule run id of an old run: the same for the same old run, always."""
    return "legacy-" + hashlib.sha256(legacy_id.encode()).hexdigest()[:16]


def _discover(sources: Sequence[Path]) -> list[Path]:
    """Result files under the given paths; experiment.json files first (the richest)."""
    found: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            inside = sorted(p for name in _RESULT_NAMES for p in source.rglob(name) if p.is_file())
            if not inside:
                raise ConfigError(
                    source, "", f"no {', '.join(_RESULT_NAMES)} found under this directory"
                )
            found += inside
        elif source.is_file():
            found.append(source)
        else:
            raise ConfigError(source, "", "legacy results not found; check the path")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return sorted(unique, key=lambda p: (p.suffix != ".json", p.name != "summary.csv", str(p)))


def _read_targets(path: Path) -> dict[str, Target]:
    """Read a targets file for its types only: workdirs need not exist on this machine."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(path, "", "targets file not found; check the path") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(path, "", f"cannot read targets file: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(path, "", f"invalid YAML: {e}") from None
    try:
        return dict(TargetsFile.model_validate(data).targets)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(path, loc, str(err["msg"]).removeprefix("Value error, ")) from None


def _read_runs(files: list[Path], warnings: list[LegacyWarning]) -> tuple[list[LegacyRun], int]:
    runs: dict[str, LegacyRun] = {}
    merged = 0
    for path in files:
        rows = (
            [read_experiment_json(path, warnings)]
            if path.suffix == ".json"
            else read_csv(path, warnings)
        )
        for row in rows:
            if row.legacy_id in runs:
                runs[row.legacy_id].merge(row)
                merged += 1
            else:
                runs[row.legacy_id] = row
    return list(runs.values()), merged


def _mode(
    run: LegacyRun, typed: Mapping[str, HyperValue], defaults: Mapping[str, HyperValue] | None
) -> str:
    if run.mode in ("default", "mutation", "parallel"):
        return run.mode
    if run.nested or run.background is not None or run.experiment_id.endswith("_parallel"):
        return "parallel"
    if defaults is not None:
        changed = any(typed.get(n) != v for n, v in defaults.items())
        return "mutation" if changed else "default"
    # The old tool stored only the hyperparameters it mutated.
    return "mutation" if run.hyperparameters else "default"


def _component(value: float | None, method: str, attribution: str) -> EnergyComponent:
    if value is None:
        return EnergyComponent.unavailable(LEGACY_REASON)
    if method == "integrated":
        return EnergyComponent(
            energy_j=value,
            method="integrated",
            attribution="combined" if attribution == "combined" else "exclusive",
            sampling_period_s=LEGACY_GPU_PERIOD_S,
        )
    return EnergyComponent(
        energy_j=value,
        method="counter",
        attribution="combined" if attribution == "combined" else "exclusive",
    )


def _energy(run: LegacyRun, mode: str) -> tuple[EnergyBlock, PowerBlock]:
    # Parallel energy covered the foreground and the background together.
    attribution = run.attribution if run.attribution in ("combined", "exclusive") else None
    attribution = attribution or ("combined" if mode == "parallel" else "exclusive")
    energy = EnergyBlock(
        {
            "gpu": _component(run.energy.get("gpu_j"), "integrated", attribution),
            "cpu_pkg": _component(run.energy.get("cpu_pkg_j"), "counter", attribution),
            "cpu_dram": _component(run.energy.get("cpu_dram_j"), "counter", attribution),
        }
    )
    figures = {
        key: run.energy.get(key)
        for key in (
            "gpu_avg_w",
            "gpu_max_w",
            "gpu_min_w",
            "gpu_temp_avg_c",
            "gpu_temp_max_c",
            "gpu_util_avg_pct",
            "gpu_util_max_pct",
        )
    }
    measured = any(v is not None for v in figures.values())
    power = PowerBlock(
        gpu_avg_w=figures["gpu_avg_w"],
        gpu_max_w=figures["gpu_max_w"],
        gpu_min_w=figures["gpu_min_w"],
        gpu_temp_avg_c=figures["gpu_temp_avg_c"],
        gpu_temp_max_c=figures["gpu_temp_max_c"],
        gpu_util_avg_pct=figures["gpu_util_avg_pct"],
        gpu_util_max_pct=figures["gpu_util_max_pct"],
        sampling_period_s=LEGACY_GPU_PERIOD_S if measured else None,
        reason=None if measured else LEGACY_REASON,
    )
    return energy, power


def _session(run: LegacyRun) -> str:
    if run.session and run.session not in (".", ".."):
        return re.sub(r"[^A-Za-z0-9_.-]+", "-", run.session)
    return "legacy"


def _record(run: LegacyRun, study: str, values: ValueTyper, targets_path: Path | None) -> RunRecord:
    primary = run.sources[0]
    if run.repository is None:
        raise ConfigError(primary, f"{run.experiment_id}.repository", "the run names no repository")
    target = run.repository
    model = None if run.model in (None, DEFAULT_MODEL) else run.model
    declared = values.declared(target)
    typed, filled = values.hyperparameters(target, run.hyperparameters, primary, run.experiment_id)
    defaults = None if declared is None else {n: values.default(target, n) for n in declared}
    mode = _mode(run, typed, defaults)
    if defaults is not None:
        mutated = [n for n in typed if n in defaults and typed[n] != defaults[n]]
    else:
        mutated = list(typed) if mode != "default" else []
    error: str | None
    if run.success is None:
        status = RunStatus.FAILED
        error = "training_success " + LEGACY_REASON
    else:
        status = RunStatus.SUCCEEDED if run.success else RunStatus.FAILED
        error = None if run.success else (run.error or "the legacy tool recorded a failure")
    energy, power = _energy(run, mode)
    background = None
    if run.background is not None:
        bg_target = run.background.get("repository") or "unknown"
        bg_typed, _ = values.hyperparameters(
            bg_target, run.background["hyperparameters"], primary, f"{run.experiment_id}.background"
        )
        bg_model = run.background.get("model")
        background = {
            "target": bg_target,
            "model": None if bg_model in (None, DEFAULT_MODEL) else bg_model,
            "hyperparameters": bg_typed,
            "runs": None,
            "effective": None,
            "reasons": [f"background runs and load {LEGACY_REASON}"],
        }
    provenance: dict[str, Any] = {
        "imported_from": str(primary),
        "also_in": [str(p) for p in run.sources[1:]],
        "legacy_id": run.legacy_id,
        "legacy_experiment_id": run.experiment_id,
        "legacy_session": run.session,
        "legacy_model": run.model,
        "hyperparameter_types": f"declared in {targets_path}"
        if declared is not None
        else "inferred",
        "defaults_filled": filled,
        "energy": "GPU: nvidia-smi power summed once a second; CPU: perf stat RAPL counters",
        "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return RunRecord(
        run_id=legacy_run_id(run.legacy_id),
        study=study,
        session=_session(run),
        slot_id=run.experiment_id,
        target=target,
        model=model,
        mode=mode,
        hyperparameters=typed,
        mutated=mutated,
        dedup_key=values.key(target, model, mode, typed),
        status=status,
        attempts=(run.retries or 0) + 1,
        started_at=run.timestamp,
        duration_s=run.duration_s,
        metrics=dict(run.metrics),
        energy=energy,
        power=power,
        background=background,
        run_dir=None if run.run_dir is None else str(run.run_dir),
        provenance=provenance,
        error=error,
    )


def read_legacy_results(
    sources: Sequence[Path],
    *,
    study: str = DEFAULT_IMPORT_STUDY,
    targets: Path | None = None,
) -> tuple[list[RunRecord], int, list[LegacyWarning]]:
    """Read old result files and directories into records; writes nothing.

    Args:
        sources: ``run_*`` directories (searched for experiment.json, summary.csv and
            raw_data.csv), a results directory holding them, or single files.
        study: Study of the records.
        targets: A targets file whose hyperparameter declarations type the values (and
            fill the defaults the old tool did not store); without it types are inferred.

    Returns:
        The records (one per old run), the number of merged duplicate descriptions, and
        the warnings.

    Raises:
        ConfigError: A source is missing or malformed.
    """
    if not _STUDY_NAME.match(study) or len(study) > 100:
        raise ConfigError(
            "--study", "", f"{study!r} is not a study name; use letters, digits, '_', '.', '-'"
        )
    declared = _read_targets(targets) if targets is not None else {}
    warnings: list[LegacyWarning] = []
    runs, merged = _read_runs(_discover(sources), warnings)
    values = ValueTyper(runs, declared)
    for repo in sorted(values.undeclared_targets()):
        if targets is not None:
            warnings.append(
                LegacyWarning(targets, repo, "no such target; hyperparameter types inferred")
            )
    records = [_record(run, study, values, targets) for run in runs]
    return records, merged, merge_warnings(warnings)


def import_legacy(
    sources: Sequence[Path],
    results_dir: Path,
    *,
    study: str = DEFAULT_IMPORT_STUDY,
    targets: Path | None = None,
) -> ImportResult:
    """Import old runs into the results database as the study ``study``.

    Idempotent: a run imported before (from any file describing it) is not added again.
    See :func:`read_legacy_results` for the arguments.

    Raises:
        ConfigError: A source is missing or malformed (nothing written).
        StorageError: The database cannot be used.
    """
    records, merged, warnings = read_legacy_results(sources, study=study, targets=targets)
    imported: list[str] = []
    present: list[str] = []
    with ResultsStore(Path(results_dir)) as store:
        for record in records:
            if store.get_run(record.run_id) is not None:
                present.append(record.run_id)
                continue
            store.insert_run(record)
            imported.append(record.run_id)
    logger.info("imported %d runs into study %s", len(imported), study)
    return ImportResult(study, Path(results_dir) / DB_FILENAME, imported, present, merged, warnings)
