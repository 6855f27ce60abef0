"""Loading and cross-checking targets and study files.

Schema errors from pydantic are translated here, once, into a :class:`ConfigError` that
names the file, line and field and says how to fix it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from hyperjoule.config._limits import MAX_PLANNED_RUNS
from hyperjoule.config._placeholders import expand_placeholders, placeholder_problem
from hyperjoule.config._search import resolve_objectives, search_problem
from hyperjoule.config._study import (
    BackgroundConfig,
    Defaults,
    ExecutorConfig,
    ForegroundConfig,
    MutationExperiment,
    ParallelExperiment,
    PruneConfig,
    SearchExperiment,
    StudyFile,
)
from hyperjoule.config._targets import Hyperparameter, MetricSpec, Target, TargetsFile
from hyperjoule.config._values import coerce_value
from hyperjoule.config._yaml import ConfigDocument, read_document

__all__ = [
    "LoadedStudy",
    "load_study",
    "load_targets",
    "placeholder_values",
    "resolve_command",
    "resolve_env",
]

_M = TypeVar("_M", bound=BaseModel)

_MODELS: tuple[type[BaseModel], ...] = (
    TargetsFile,
    Target,
    Hyperparameter,
    MetricSpec,
    StudyFile,
    Defaults,
    MutationExperiment,
    ParallelExperiment,
    ForegroundConfig,
    BackgroundConfig,
    SearchExperiment,
    PruneConfig,
    ExecutorConfig,
)
_KNOWN_KEYS = sorted({name for model in _MODELS for name in model.model_fields} | {"mode"})

_PLACES: dict[type[BaseModel], str] = {
    TargetsFile: "the top level of a targets file",
    Target: "a target",
    Hyperparameter: "a hyperparameter",
    MetricSpec: "a metric",
    StudyFile: "the top level of a study",
    Defaults: "'defaults'",
    MutationExperiment: "'mode: mutation' experiments",
    ParallelExperiment: "'mode: parallel' experiments",
    ForegroundConfig: "a parallel experiment's 'foreground'",
    BackgroundConfig: "a parallel experiment's 'background'",
    SearchExperiment: "'mode: search' experiments",
    PruneConfig: "a search's 'prune'",
    ExecutorConfig: "'executor'",
}
"""Where each model's keys belong, for a key written in the wrong place."""


@dataclass(frozen=True)
class LoadedStudy:
    """A validated study with its targets, every cross-reference checked.

    Attributes:
        path: The study file.
        study: The parsed study.
        targets: The targets it may use, workdirs resolved to absolute paths.
        targets_path: The file that declared the targets (the study file when inline).
        config_hash: Hash of the study and targets as parsed; changes when either does.
    """

    path: Path
    study: StudyFile
    targets: dict[str, Target]
    targets_path: Path
    config_hash: str

    @property
    def name(self) -> str:
        """The study's name."""
        return self.study.name

    def used_targets(self) -> list[str]:
        """Names of the targets the experiments use (backgrounds included), in order."""
        names: list[str] = []
        for exp in self.study.experiments:
            if isinstance(exp, ParallelExperiment):
                used = [exp.foreground.target, *(b.target for b in exp.backgrounds)]
            else:
                used = [exp.target]
            names += [n for n in used if n not in names]
        return names

    def to_config_dict(self) -> dict[str, Any]:
        """Return the study and its targets as JSON-ready data (for provenance)."""
        return {
            "study_file": str(self.path),
            "targets_file": str(self.targets_path),
            "study": self.study.model_dump(mode="json", exclude={"targets"}),
            "targets": {n: t.model_dump(mode="json") for n, t in self.targets.items()},
        }


def _clean_loc(data: Any, loc: Sequence[str | int]) -> list[str | int]:
    """Keep only the parts of a pydantic location that index into the data.

    Unions and tagged unions add member names ('mutation', 'list[str]') to locations;
    users never wrote those.
    """
    cleaned: list[str | int] = []
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            cleaned.append(part)
            node = node[part]
        elif isinstance(node, dict) and isinstance(part, str) and not _is_union_member(part):
            cleaned.append(part)  # a missing key: name it
            node = None
    return cleaned


def _is_union_member(part: str) -> bool:
    return any(c in part for c in "[]-=")


def _describe(error: Any, key: str | int | None) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        places = [label for model, label in _PLACES.items() if key in model.model_fields]
        if places and len(places) <= 3:
            # A real key in the wrong place: a spelling hint would suggest the key itself,
            # but a near twin ('metric' for 'metrics') may be what was meant.
            others = [k for k in _KNOWN_KEYS if k != key]
            twin = difflib.get_close_matches(str(key), others, n=1, cutoff=0.85)
            hint = f"; did you mean '{twin[0]}'?" if twin else ""
            return f"'{key}' is not allowed here; it belongs only in {' or '.join(places)}{hint}"
        close = difflib.get_close_matches(str(key), _KNOWN_KEYS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key '{key}'{hint}; remove it or fix the spelling"
    if kind == "missing":
        return f"required key '{key}' is missing; add it"
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if kind not in ("value_error", "invalid_mode") and "input" in error:
        shown = error["input"]
        if not isinstance(shown, (dict, list)):
            message += f" (got {shown!r})"
    return message


def _validate(model: type[_M], data: Any, doc: ConfigDocument, prefix: Sequence[str | int]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errors = e.errors()
        locs: list[list[str | int]] = []
        for err in errors:
            loc = _clean_loc(data, err["loc"])
            if loc not in locs:
                locs.append(loc)
        first = errors[0]
        loc = _clean_loc(data, first["loc"])
        key = loc[-1] if loc else None
        message = _describe(first, key)
        if len(locs) > 1:
            message += f" (and {len(locs) - 1} more problem{'s' if len(locs) > 2 else ''})"
        raise doc.error([*prefix, *loc], message) from None


def _resolve_targets(
    parsed: TargetsFile, doc: ConfigDocument, prefix: Sequence[str | int], base_dir: Path
) -> dict[str, Target]:
    targets: dict[str, Target] = {}
    for name, target in parsed.targets.items():
        workdir = (base_dir / target.workdir.expanduser()).resolve()
        if not workdir.is_dir():
            raise doc.error(
                [*prefix, name, "workdir"],
                f"directory {workdir} does not exist; the path is relative to {doc.path.name}",
            )
        _check_placeholders(target, doc, [*prefix, name])
        targets[name] = target.model_copy(update={"workdir": workdir})
    return targets


def _check_placeholders(target: Target, doc: ConfigDocument, loc: list[str | int]) -> None:
    fields: list[tuple[list[str | int], str]] = [
        ([*loc, "command", i], part) for i, part in enumerate(target.command)
    ]
    fields += [([*loc, "args", i], part) for i, part in enumerate(target.args)]
    fields += [([*loc, "env", key], value) for key, value in target.env.items()]
    for field_loc, text in fields:
        problem = placeholder_problem(text)
        if problem is not None:
            raise doc.error(field_loc, problem)


def _inline_targets(data: dict[str, Any], doc: ConfigDocument, base_dir: Path) -> dict[str, Target]:
    # Inline targets may be written as targets.yaml's whole mapping or as its contents.
    if set(data) == {"targets"} and isinstance(data["targets"], dict):
        parsed = _validate(TargetsFile, data, doc, ["targets"])
        return _resolve_targets(parsed, doc, ["targets", "targets"], base_dir)
    parsed = _validate(TargetsFile, {"targets": data}, doc, [])
    return _resolve_targets(parsed, doc, ["targets"], base_dir)


def load_targets(path: Path) -> dict[str, Target]:
    """Load and validate a targets file, resolving workdirs against its directory.

    Raises:
        ConfigError: The file is missing or malformed, or a workdir does not exist.
    """
    doc = read_document(path, what="targets file")
    parsed = _validate(TargetsFile, doc.data, doc, [])
    return _resolve_targets(parsed, doc, ["targets"], path.parent)


def load_study(path: Path) -> LoadedStudy:
    """Load a study file and its targets, checking every reference between them.

    Raises:
        ConfigError: Either file is missing or malformed, or the study names a target,
            model or hyperparameter that does not exist.
    """
    path = Path(path)
    doc = read_document(path, what="study file")
    study = _validate(StudyFile, doc.data, doc, [])
    if isinstance(study.targets, dict):
        targets = _inline_targets(study.targets, doc, path.parent)
        targets_path = path
    else:
        targets_path = (path.parent / study.targets.expanduser()).resolve()
        if not targets_path.is_file():
            raise doc.error(
                ["targets"],
                f"targets file {targets_path} not found; the path is relative to {path.name}",
            )
        targets = load_targets(targets_path)
    _check_references(study, targets, doc)
    digest = hashlib.sha256(
        json.dumps(
            [doc.data, {n: t.model_dump(mode="json") for n, t in targets.items()}],
            sort_keys=True,
            default=str,
        ).encode()
    ).hexdigest()[:16]
    return LoadedStudy(path.resolve(), study, targets, targets_path, digest)


def _check_references(study: StudyFile, targets: dict[str, Target], doc: ConfigDocument) -> None:
    planned = 0
    for index, exp in enumerate(study.experiments):
        loc: list[str | int] = ["experiments", index]
        runs = exp.foreground.runs if isinstance(exp, ParallelExperiment) else exp.runs
        planned += runs or study.defaults.runs
        if planned > MAX_PLANNED_RUNS:
            # Refused before planning: a plan is built in memory, run by run.
            raise doc.error(
                loc,
                f"the study plans more than {MAX_PLANNED_RUNS} runs; "
                "split it into several studies or lower 'runs'",
            )
        if isinstance(exp, ParallelExperiment):
            fg = exp.foreground
            _check_run(
                fg.target,
                fg.model,
                fg.hyperparameters,
                fg.mutate,
                targets,
                doc,
                [*loc, "foreground"],
            )
            for b_index, bg in enumerate(exp.backgrounds):
                b_loc = [*loc, "background"] + (
                    [b_index] if isinstance(exp.background, list) else []
                )
                _check_run(bg.target, bg.model, bg.hyperparameters, None, targets, doc, b_loc)
        elif isinstance(exp, SearchExperiment):
            _check_run(
                exp.target, exp.model, exp.hyperparameters, exp.search, targets, doc, loc, "search"
            )
            _check_search(exp, targets[exp.target], doc, loc)
        else:
            mutate = exp.mutate if isinstance(exp, MutationExperiment) else None
            _check_run(exp.target, exp.model, exp.hyperparameters, mutate, targets, doc, loc)


def _check_search(
    exp: SearchExperiment, target: Target, doc: ConfigDocument, loc: list[str | int]
) -> None:
    """Objectives and constraints must name figures or metrics the target declares."""
    for name in exp.objectives:
        problem = search_problem(name, target)
        if problem:
            raise doc.error([*loc, "objectives", name], f"unknown objective {problem}")
    try:
        resolve_objectives(exp, target)
    except ValueError as e:
        raise doc.error([*loc, "objectives"], str(e)) from None
    for name in exp.constraints:
        problem = search_problem(name, target)
        if problem:
            raise doc.error([*loc, "constraints", name], f"constraint on {problem}")
    if isinstance(exp.search, str) and not any(
        hp.mutable for hp in target.hyperparameters.values()
    ):
        raise doc.error(
            [*loc, "search"],
            f"target '{exp.target}' has no hyperparameter with a range or choices to search",
        )


def _check_run(
    target_name: str,
    model: str | None,
    overrides: dict[str, Any],
    mutate: str | list[str] | None,
    targets: dict[str, Target],
    doc: ConfigDocument,
    loc: list[str | int],
    mutate_key: str = "mutate",
) -> None:
    target = targets.get(target_name)
    if target is None:
        raise doc.error(
            [*loc, "target"], f"unknown target '{target_name}'{_suggest(target_name, targets)}"
        )
    if target.models is None and model is not None:
        raise doc.error(
            [*loc, "model"],
            f"target '{target_name}' declares no models; remove 'model' or add 'models' to it",
        )
    if target.models is not None:
        if model is None and len(target.models) > 1:
            raise doc.error(
                [*loc, "model"],
                f"target '{target_name}' has several models; choose one of {target.models}",
            )
        if model is not None and model not in target.models:
            raise doc.error(
                [*loc, "model"],
                f"unknown model '{model}' of target '{target_name}'; choose one of {target.models}",
            )
    declared = target.hyperparameters
    for name, value in overrides.items():
        hp = declared.get(name)
        if hp is None:
            raise doc.error(
                [*loc, "hyperparameters", name],
                f"target '{target_name}' has no hyperparameter '{name}'{_suggest(name, declared)}",
            )
        try:
            coerce_value(hp, value)
        except ValueError as e:
            raise doc.error([*loc, "hyperparameters", name], f"{e} (type {hp.type})") from None
    if isinstance(mutate, list):
        for i, name in enumerate(mutate):
            hp = declared.get(name)
            if hp is None:
                raise doc.error(
                    [*loc, mutate_key, i],
                    f"target '{target_name}' has no hyperparameter '{name}'"
                    + _suggest(name, declared),
                )
            if not hp.mutable:
                raise doc.error(
                    [*loc, mutate_key, i],
                    f"hyperparameter '{name}' has no 'range' or 'choices' to mutate within; "
                    "add one to the target",
                )
            if name in overrides:
                raise doc.error(
                    [*loc, mutate_key, i],
                    f"'{name}' is both mutated and fixed in 'hyperparameters'; keep one",
                )


def _suggest(name: str, known: dict[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f"; known: {', '.join(sorted(known)) or 'none'}"


def placeholder_values(target: Target, **run: str) -> dict[str, str]:
    """The placeholder values of one launch of ``target``.

    Args:
        target: The target (its workdir already absolute).
        **run: The per-run values (``run_dir``, ``run_id``, ``attempt``); those left out
            stay literal, as in a plan listing.
    """
    return {"python": sys.executable, "workdir": str(target.workdir), **run}


def resolve_command(target: Target, values: dict[str, str] | None = None) -> list[str]:
    """Return the target's argv prefix and fixed args with placeholders expanded.

    Args:
        target: The target.
        values: Placeholder values (see :func:`placeholder_values`); by default only
            ``{python}`` and ``{workdir}`` are expanded.
    """
    values = values if values is not None else placeholder_values(target)
    return [expand_placeholders(part, values) for part in (*target.command, *target.args)]


def resolve_env(target: Target, values: dict[str, str]) -> dict[str, str]:
    """Return the target's own ``env`` with placeholders expanded."""
    return {key: expand_placeholders(value, values) for key, value in target.env.items()}
