"""``hyperjoule import``: the lab's measured runs → records of an imported study.

Every source is read, typed and turned into a :class:`~hyperjoule.records.RunRecord`
before anything is written, so a bad input writes nothing. Runs are identified by what
they are (:mod:`hyperjoule.legacy._identity`); every description of a run is kept in its
record (``provenance.legacy_descriptions``), so a later import that brings another
description of it merges into the same record, whatever the order of the imports.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from hyperjoule.config import Target, TargetsFile
from hyperjoule.config._yaml import read_config_text
from hyperjoule.errors import ConfigError
from hyperjoule.legacy._build import build_record
from hyperjoule.legacy._formats import LegacyWarning, merge_warnings
from hyperjoule.legacy._identity import (
    Conflict,
    Duplicate,
    MergedRun,
    group_descriptions,
    merge_descriptions,
    zone_reader,
)
from hyperjoule.legacy._registry import DEFAULT_MODEL
from hyperjoule.legacy._results import LegacyRun, read_csv, read_experiment_json, table_problem
from hyperjoule.legacy._typing import ValueTyper
from hyperjoule.records import (
    RunRecord,
)
from hyperjoule.storage import DB_FILENAME, ResultsStore

__all__ = [
    "DEFAULT_IMPORT_STUDY",
    "FileReport",
    "ImportResult",
    "import_legacy",
    "legacy_run_id",
    "read_legacy_results",
]

logger = logging.getLogger(__name__)

DEFAULT_IMPORT_STUDY = "legacy-import"
"""Study that imported runs belong to unless another is named."""

LEGACY_PREFIX = "legacy-"
"""Run ids of imported runs start with this."""

_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class FileReport:
    """One file an import looked at.

    Attributes:
        path: The file.
        rows: Descriptions of runs read from it (0 when skipped).
        skipped: Why it was not read, or None.
    """

    path: Path
    rows: int
    skipped: str | None = None


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_legacy` did.

    Attributes:
        study: The study new runs were imported into.
        database: The results database.
        imported: Run ids added now.
        already_present: Run ids whose every description was imported before.
        merged_rows: Descriptions merged into a run described already (``duplicates``).
        warnings: What could not be imported, one entry per key (repeats merged).
        updated: Run ids stored before that this import described further.
        files: Every file looked at, with its rows or why it was skipped.
        duplicates: Each merged description and why it is the same run.
        conflicts: Fields two descriptions of one run disagree on, and which one won.
        timezone: The zone the old local timestamps were read in.
    """

    study: str
    database: Path
    imported: list[str]
    already_present: list[str]
    merged_rows: int
    warnings: list[LegacyWarning]
    updated: list[str] = field(default_factory=list)
    files: list[FileReport] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    timezone: str = ""


def legacy_run_id(identity: str) -> str:
    """The hyperjoule run id for an old run's identity text: always the same for it."""
    return LEGACY_PREFIX + hashlib.sha256(identity.encode()).hexdigest()[:16]


def _discover(sources: Sequence[Path]) -> tuple[list[Path], list[FileReport]]:
    """Result files under the given paths, and the files in result trees that are not.

    experiment.json files come first (the richest); skipped files come with why.
    """
    found: list[Path] = []
    skipped: list[FileReport] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            jsons = sorted(p for p in source.rglob("experiment.json") if p.is_file())
            tables = []
            for csv_path in sorted(p for p in source.rglob("*.csv") if p.is_file()):
                problem = table_problem(csv_path)
                if problem is None:
                    tables.append(csv_path)
                else:
                    skipped.append(FileReport(csv_path.resolve(), 0, problem))
            if not jsons and not tables:
                raise ConfigError(
                    source, "", "no experiment.json or results CSV found under this directory"
                )
            found += jsons + tables
        elif source.is_file():
            found.append(source)
        else:
            raise ConfigError(source, "", "legacy results not found; check the path")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    ordered = sorted(unique, key=lambda p: (p.suffix != ".json", p.name != "summary.csv", str(p)))
    return ordered, skipped


def _read_targets(path: Path) -> dict[str, Target]:
    """Read a targets file for its types only: workdirs need not exist on this machine."""
    text = read_config_text(Path(path), "targets file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(path, "", f"invalid YAML: {e}") from None
    try:
        return dict(TargetsFile.model_validate(data).targets)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(path, loc, str(err["msg"]).removeprefix("Value error, ")) from None


def _read_rows(
    files: list[Path], warnings: list[LegacyWarning]
) -> tuple[list[LegacyRun], list[FileReport]]:
    rows: list[LegacyRun] = []
    reports: list[FileReport] = []
    for path in files:
        read = (
            [read_experiment_json(path, warnings)]
            if path.suffix == ".json"
            else read_csv(path, warnings)
        )
        rows += read
        reports.append(FileReport(path, len(read)))
    return rows, reports


def _check_study(study: str) -> None:
    if not _STUDY_NAME.match(study) or len(study) > 100:
        raise ConfigError(
            "--study", "", f"{study!r} is not a study name; use letters, digits, '_', '.', '-'"
        )


@dataclass
class _Prepared:
    """An import worked out in full, before anything is written."""

    records: list[RunRecord]
    new_ids: set[str]
    files: list[FileReport]
    duplicates: list[Duplicate]
    conflicts: list[Conflict]
    warnings: list[LegacyWarning]
    zone: str


def _identity(merged: MergedRun) -> str:
    run = merged.run
    model = None if run.model in (None, DEFAULT_MODEL) else run.model
    when = (
        merged.utc.replace(microsecond=0).isoformat()
        if merged.utc is not None
        else f"{run.experiment_id}@{run.timestamp}"
    )
    return f"{run.repository}/{model}@{when}"


def _prepare(
    sources: Sequence[Path],
    study: str,
    targets: Path | None,
    timezone_name: str | None,
    prefer: Sequence[str],
    stored: Mapping[str, tuple[str, list[LegacyRun]]],
) -> _Prepared:
    """Read, group, merge and type everything.

    ``stored`` maps run ids of an earlier import to their study and descriptions.
    """
    _check_study(study)
    zone, zone_label = zone_reader(timezone_name)
    declared = _read_targets(targets) if targets is not None else {}
    warnings: list[LegacyWarning] = []
    files, skipped = _discover(sources)
    rows, reports = _read_rows(files, warnings)
    owner: dict[int, str] = {}
    old_rows: list[LegacyRun] = []
    for run_id, (_, descriptions) in stored.items():
        for description in descriptions:
            owner[id(description)] = run_id
            old_rows.append(description)
    new_rows = {id(r) for r in rows}
    values = ValueTyper([*rows, *old_rows], declared)
    for repo in sorted(values.undeclared_targets()):
        if targets is not None:
            warnings.append(
                LegacyWarning(targets, repo, "no such target; hyperparameter types inferred")
            )
    records: list[RunRecord] = []
    new_ids: set[str] = set()
    duplicates: list[Duplicate] = []
    conflicts: list[Conflict] = []
    taken = set(stored)
    for members, _ in group_descriptions([*old_rows, *rows], zone):
        if not any(id(m) in new_rows for m in members):
            continue  # stored runs this import does not describe
        merged = merge_descriptions(members, prefer, zone)
        owners = sorted({owner[id(m)] for m in members if id(m) in owner})
        if owners:
            run_id, run_study = owners[0], stored[owners[0]][0]
        else:
            base = _identity(merged)
            run_id, n = legacy_run_id(base), 2
            while run_id in taken:  # two runs in one second: tell them apart
                run_id, n = legacy_run_id(f"{base}#{n}"), n + 1
            run_study = study
            new_ids.add(run_id)
        taken.add(run_id)
        duplicates += merged.duplicates
        conflicts += merged.conflicts
        records.append(build_record(merged, run_id, run_study, values, targets, zone_label))
    return _Prepared(
        records,
        new_ids,
        reports + skipped,
        duplicates,
        conflicts,
        merge_warnings(warnings),
        zone_label,
    )


def read_legacy_results(
    sources: Sequence[Path],
    *,
    study: str = DEFAULT_IMPORT_STUDY,
    targets: Path | None = None,
    timezone: str | None = None,
    prefer: Sequence[str] = (),
) -> tuple[list[RunRecord], int, list[LegacyWarning]]:
    """Read old result files and directories into records; writes nothing.

    Args:
        sources: ``run_*`` directories (searched for experiment.json files and results
            CSVs), a results directory holding them, or single files.
        study: Study of the records.
        targets: A targets file whose hyperparameter declarations type the values (and
            fill the defaults the old tool did not store); without it types are inferred.
        timezone: IANA zone the old local timestamps were written in; None: this
            machine's.
        prefer: File names (``raw_data.csv``), path endings or suffixes (``csv``) whose
            values win when descriptions of a run disagree; by default experiment.json,
            then summary.csv, then other CSVs.

    Returns:
        The records (one per old run), the number of merged duplicate descriptions, and
        the warnings.

    Raises:
        ConfigError: A source is missing or malformed.
    """
    prepared = _prepare(sources, study, targets, timezone, prefer, {})
    return prepared.records, len(prepared.duplicates), prepared.warnings


def _stored_descriptions(store: ResultsStore) -> dict[str, tuple[str, list[LegacyRun]]]:
    out: dict[str, tuple[str, list[LegacyRun]]] = {}
    for record in store.iter_runs(run_id_prefix=LEGACY_PREFIX):
        kept = record.provenance.get("legacy_descriptions")
        if isinstance(kept, list) and kept:
            out[record.run_id] = (record.study, [LegacyRun.from_dict(d) for d in kept])
    return out


def import_legacy(
    sources: Sequence[Path],
    results_dir: Path,
    *,
    study: str = DEFAULT_IMPORT_STUDY,
    targets: Path | None = None,
    timezone: str | None = None,
    prefer: Sequence[str] = (),
) -> ImportResult:
    """Import old runs into the results database as the study ``study``.

    Idempotent and order-independent: a run is identified by what it is, and a run
    imported before (from any file describing it) is merged with what this import says
    about it, not added again. See :func:`read_legacy_results` for the arguments.

    Raises:
        ConfigError: A source is missing or malformed (nothing written).
        StorageError: The database cannot be used.
    """
    _check_study(study)
    zone_reader(timezone)  # a bad zone is refused before the database is created
    results_dir = Path(results_dir)
    stored: dict[str, tuple[str, list[LegacyRun]]] = {}
    if (results_dir / DB_FILENAME).exists():
        with ResultsStore(results_dir, create=False) as store:
            stored = _stored_descriptions(store)
    prepared = _prepare(sources, study, targets, timezone, prefer, stored)
    imported: list[str] = []
    present: list[str] = []
    updated: list[str] = []
    with ResultsStore(results_dir) as store:
        for record in prepared.records:
            if record.run_id in prepared.new_ids:
                store.insert_run(record)
                imported.append(record.run_id)
                continue
            old = store.get_run(record.run_id)
            if old is not None and _same(old, record):
                present.append(record.run_id)
            else:
                store.update_run(record)
                updated.append(record.run_id)
    logger.info("imported %d runs into study %s", len(imported), study)
    return ImportResult(
        study,
        results_dir / DB_FILENAME,
        imported,
        present,
        len(prepared.duplicates),
        prepared.warnings,
        updated,
        prepared.files,
        prepared.duplicates,
        prepared.conflicts,
        prepared.zone,
    )


def _same(old: RunRecord, new: RunRecord) -> bool:
    """True when a rebuilt record says what the stored one says (import time aside)."""
    a, b = old.to_dict(), new.to_dict()
    for data in (a, b):
        data["provenance"] = {k: v for k, v in data["provenance"].items() if k != "imported_at"}
    return a == b
