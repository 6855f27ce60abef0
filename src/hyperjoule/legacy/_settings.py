"""One old ``settings/*.json`` study file → one hyperjoule study.

Repositories become targets of the same name; ``runs_per_config`` becomes ``runs``; a
list of names to ``mutate`` is mutated jointly (``strategy: joint``), as the old tool did;
``["all"]`` becomes ``all``. Keys the study schema cannot express are reported and left
out; an experiment that cannot run at all (a model the registry does not list) is left
out with a report, and the rest of the study is still converted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hyperjoule.config import StudyFile
from hyperjoule.errors import ConfigError
from hyperjoule.legacy._formats import LegacyWarning, is_comment_key, read_json_value
from hyperjoule.legacy._registry import LegacyTarget
from hyperjoule.legacy._typing import coerce_legacy

__all__ = ["LEGACY_COOLDOWN_S", "LEGACY_MAX_RETRIES", "ConvertedStudy", "convert_settings"]

LEGACY_COOLDOWN_S = 60.0
"""The old runner slept this long after every experiment; converted studies keep it."""

LEGACY_MAX_RETRIES = 2
"""The old runner's retries when a settings file did not say."""

_MODES = ("default", "mutation", "parallel")
_TOP_KEYS = {
    "experiment_name",
    "description",
    "mode",
    "runs_per_config",
    "max_retries",
    "governor",
    "experiments",
}
_RUN_KEYS = {"repo", "model", "mode", "mutate", "hyperparameters", "runs_per_config", "max_retries"}
_PARALLEL_KEYS = {"mode", "foreground", "background", "runs_per_config", "max_retries"}
_EXPLAINED = {
    "mutate_params": (
        "the old tool ignored this key (it only read 'mutate'), so it is not converted; "
        "list the names under 'mutate' if they were meant to be mutated"
    ),
    "use_deduplication": (
        "not needed: hyperjoule always leaves out configurations already measured; "
        "bring old runs in with `hyperjoule import` so that they count"
    ),
    "historical_csvs": (
        "not converted: bring these files in with `hyperjoule import` so their "
        "configurations are left out of new plans"
    ),
}


@dataclass(frozen=True)
class ConvertedStudy:
    """A converted settings file.

    Attributes:
        source: The old settings file.
        data: The study, ready to dump as YAML.
        description: The old ``description`` (written as a comment), if any.
    """

    source: Path
    data: dict[str, Any]
    description: str | None


class _Converter:
    """Converts one settings file, collecting reports."""

    def __init__(
        self, path: Path, targets: dict[str, LegacyTarget], warnings: list[LegacyWarning]
    ) -> None:
        self.path = path
        self.targets = targets
        self.warnings = warnings
        self.comment_keys = 0
        self.comment_entries = 0

    def mode_of(self, value: Any, where: str) -> str:
        """The old tool's reading of a ``mode``: anything but default/parallel mutates."""
        if value in _MODES:
            return str(value)
        self.report(
            where,
            f"mode {value!r} is not default, mutation or parallel; the old tool ran it as "
            "mutation, and so is it converted",
        )
        return "mutation"

    def report(self, key: str, message: str) -> None:
        self.warnings.append(LegacyWarning(self.path, key, message))

    def unknown_keys(self, spec: dict[str, Any], known: set[str], where: str) -> None:
        for key in spec:
            if is_comment_key(key):
                self.comment_keys += 1  # reported once per file, not once per key
            elif key not in known:
                message = _EXPLAINED.get(key, "unknown key; not converted")
                if key == "historical_csvs" and isinstance(spec[key], list):
                    message += f" ({', '.join(str(p) for p in spec[key])})"
                self.report(f"{where}{key}", message)

    def count(self, value: Any, where: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(self.path, where, f"expected a whole number, got {value!r}")
        if not float(value).is_integer() or value < minimum:
            raise ConfigError(
                self.path, where, f"expected a whole number >= {minimum}, got {value!r}"
            )
        return int(value)

    def run(
        self, spec: Any, where: str, *, mutation: bool, role: str = "experiment"
    ) -> dict[str, Any] | None:
        """Convert a repo/model/hyperparameters/mutate block; None when it is left out."""
        if not isinstance(spec, dict):
            raise ConfigError(self.path, where, f"the {role} must be an object with 'repo'")
        repo = spec.get("repo")
        if not isinstance(repo, str) or not repo:
            raise ConfigError(self.path, f"{where}.repo", "required: the repository to train")
        legacy = self.targets.get(repo)
        if legacy is None:
            known = ", ".join(sorted(self.targets))
            raise ConfigError(
                self.path, f"{where}.repo", f"repository {repo!r} is not in models_config ({known})"
            )
        out: dict[str, Any] = {"target": repo}
        old_model = spec.get("model")
        if old_model is not None and not isinstance(old_model, str):
            raise ConfigError(
                self.path, f"{where}.model", f"expected a model name, got {old_model!r}"
            )
        if old_model is not None and old_model not in legacy.legacy_models:
            self.report(
                f"{where}.model",
                f"model {old_model!r} is not listed for {repo!r} in models_config "
                f"({', '.join(legacy.legacy_models)}); the old tool ran it anyway and recorded "
                f"nonsense, so this {role} is left out",
            )
            return None
        model = legacy.model_for(old_model)
        if model is None and legacy.target.models is not None and len(legacy.target.models) > 1:
            raise ConfigError(
                self.path,
                f"{where}.model",
                f"{repo!r} has several models; name one of {legacy.legacy_models}",
            )
        if model is not None:
            out["model"] = model
        names = self.mutated(spec, legacy, where, mutation=mutation, role=role)
        if names == []:
            return None
        overrides = self.overrides(spec.get("hyperparameters"), legacy, f"{where}.hyperparameters")
        if isinstance(names, list):
            for name in [n for n in names if n in overrides]:
                self.report(
                    f"{where}.hyperparameters.{name}",
                    "also mutated; the mutation wins and the fixed value is not converted",
                )
                del overrides[name]
        if overrides:
            out["hyperparameters"] = overrides
        if names is not None:
            out["mutate"] = names
            out["strategy"] = "joint"  # the old tool mutated the listed names together
        return out

    def mutated(
        self, spec: dict[str, Any], legacy: LegacyTarget, where: str, *, mutation: bool, role: str
    ) -> str | list[str] | None:
        """The converted ``mutate``: 'all', names, None (no mutation) or [] (left out)."""
        value = spec.get("mutate")
        if not mutation:
            if value is not None:
                self.report(f"{where}.mutate", f"this {role} is not mutated; ignored")
            return None
        if value is None:
            return "all"  # a mutation experiment without names mutated everything
        if value == "all" or value == ["all"]:
            return "all"
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.path, f"{where}.mutate", 'expected a list of names or ["all"]')
        declared = legacy.target.hyperparameters
        names: list[str] = []
        for i, name in enumerate(dict.fromkeys(value)):
            key = f"{where}.mutate.{i}"
            if name in legacy.omitted:
                self.report(key, f"{name!r} was left out of the targets; not mutated")
            elif name not in declared:
                self.report(
                    key, f"{name!r} is not a hyperparameter of {legacy_name(spec)}; not mutated"
                )
            elif not declared[name].mutable:
                self.report(key, f"{name!r} has no range or choices; not mutated")
            else:
                names.append(name)
        if not names:
            self.report(f"{where}.mutate", f"nothing left to mutate; this {role} is left out")
        return names

    def overrides(self, value: Any, legacy: LegacyTarget, where: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(self.path, where, "expected an object of hyperparameter values")
        out: dict[str, Any] = {}
        for name, raw in value.items():
            hp = legacy.target.hyperparameters.get(name)
            if hp is None:
                why = "was left out of the targets" if name in legacy.omitted else "is unknown"
                self.report(
                    f"{where}.{name}", f"hyperparameter {name!r} {why}; value not converted"
                )
                continue
            try:
                out[name] = coerce_legacy(hp, raw)
            except ValueError as e:
                raise ConfigError(self.path, f"{where}.{name}", f"{e} (type {hp.type})") from None
        return out

    def experiment(self, spec: Any, index: int, mode: str) -> dict[str, Any] | None:
        where = f"experiments.{index}"
        if not isinstance(spec, dict):
            raise ConfigError(self.path, where, "an experiment must be an object")
        if "mode" in spec:
            mode = self.mode_of(spec["mode"], f"{where}.mode")
        if mode == "parallel" or "foreground" in spec:
            return self.parallel(spec, where)
        self.unknown_keys(spec, _RUN_KEYS, where + ".")
        out = self.run(spec, where, mutation=mode == "mutation")
        if out is None:
            return None
        ordered: dict[str, Any] = {"target": out.pop("target")}
        if "model" in out:
            ordered["model"] = out.pop("model")
        ordered["mode"] = mode
        self.limits(spec, where, ordered)
        ordered.update(out)
        return ordered

    def parallel(self, spec: dict[str, Any], where: str) -> dict[str, Any] | None:
        self.unknown_keys(spec, _PARALLEL_KEYS, where + ".")
        fg_spec = spec.get("foreground")
        if not isinstance(fg_spec, dict):
            raise ConfigError(
                self.path, f"{where}.foreground", "required in parallel mode: the measured run"
            )
        self.unknown_keys(fg_spec, _RUN_KEYS, f"{where}.foreground.")
        fg_mode = (
            self.mode_of(fg_spec["mode"], f"{where}.foreground.mode")
            if "mode" in fg_spec
            else ("mutation" if "mutate" in fg_spec else "default")
        )
        foreground = self.run(
            fg_spec, f"{where}.foreground", mutation=fg_mode == "mutation", role="foreground"
        )
        bg_spec = spec.get("background")
        bg_list = bg_spec if isinstance(bg_spec, list) else [bg_spec]
        if bg_spec is None or not bg_list:
            raise ConfigError(
                self.path, f"{where}.background", "required in parallel mode: the load"
            )
        backgrounds = []
        for i, bg in enumerate(bg_list):
            bg_where = f"{where}.background" + (f".{i}" if isinstance(bg_spec, list) else "")
            if isinstance(bg, dict):
                self.unknown_keys(
                    bg, {"repo", "model", "hyperparameters", "mutate"}, bg_where + "."
                )
            backgrounds.append(self.run(bg, bg_where, mutation=False, role="background"))
        if foreground is None or any(b is None for b in backgrounds):
            return None
        runs = fg_spec.get("runs_per_config", spec.get("runs_per_config"))
        if runs is not None:
            foreground["runs"] = self.count(runs, f"{where}.runs_per_config", 1)
        out: dict[str, Any] = {"mode": "parallel", "foreground": foreground}
        out["background"] = backgrounds if isinstance(bg_spec, list) else backgrounds[0]
        retries = spec.get("max_retries", fg_spec.get("max_retries"))
        if retries is not None:
            out["max_retries"] = self.count(retries, f"{where}.max_retries", 0)
        return out

    def limits(self, spec: dict[str, Any], where: str, out: dict[str, Any]) -> None:
        if "runs_per_config" in spec:
            out["runs"] = self.count(spec["runs_per_config"], f"{where}.runs_per_config", 1)
        if "max_retries" in spec:
            out["max_retries"] = self.count(spec["max_retries"], f"{where}.max_retries", 0)


def legacy_name(spec: dict[str, Any]) -> str:
    """The repository named by an old run block, quoted for messages."""
    return repr(spec.get("repo"))


def study_name(text: Any, fallback: str) -> str:
    """A valid study name from an old ``experiment_name`` (letters, digits, ``_ . -``)."""
    raw = text if isinstance(text, str) else ""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", raw.strip()).strip("-_.")[:100]
    if not name:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", fallback).strip("-_.")[:100] or "legacy"
    return name


def convert_settings(
    path: Path,
    targets: dict[str, LegacyTarget],
    warnings: list[LegacyWarning],
    targets_file: str = "targets.yaml",
) -> ConvertedStudy:
    """Convert one old settings file into a study, appending what is reported.

    Raises:
        ConfigError: The file is unreadable or malformed, names an unknown repository,
            gives a value of the wrong type, or has no experiment left to convert.
    """
    raw = read_json_value(path, "settings file")
    if isinstance(raw, list):
        data: dict[str, Any] = {"experiments": raw}  # a bare list is the experiment list
    elif isinstance(raw, dict):
        data = raw
    else:
        raise ConfigError(path, "", "expected an object with 'experiments' or a list of them")
    conv = _Converter(path, targets, warnings)
    conv.unknown_keys(data, _TOP_KEYS, "")
    name = study_name(data.get("experiment_name"), path.stem)
    if isinstance(data.get("experiment_name"), str) and data["experiment_name"] != name:
        conv.report("experiment_name", f"not a valid study name; written as {name!r}")
    mode = conv.mode_of(data["mode"], "mode") if "mode" in data else "default"
    defaults: dict[str, Any] = {
        "runs": conv.count(data.get("runs_per_config", 1), "runs_per_config", 1),
        "max_retries": conv.count(data.get("max_retries", LEGACY_MAX_RETRIES), "max_retries", 0),
        "cooldown_s": LEGACY_COOLDOWN_S,
    }
    study: dict[str, Any] = {"name": name, "targets": targets_file, "seed": 0, "defaults": defaults}
    governor = data.get("governor")
    if governor not in (None, "", False):
        if not isinstance(governor, str):
            raise ConfigError(path, "governor", f"expected a governor name, got {governor!r}")
        study["system"] = {"cpu_governor": governor}
    experiments = data.get("experiments")
    if not isinstance(experiments, list) or not experiments:
        raise ConfigError(path, "experiments", "required: a non-empty list of experiments")
    converted = []
    for i, exp in enumerate(experiments):
        if isinstance(exp, dict) and exp and all(is_comment_key(k) for k in exp):
            conv.comment_entries += 1  # {"comment": "--- stage 7 ---"}: a separator
            continue
        converted.append(conv.experiment(exp, i, mode))
    if conv.comment_entries or conv.comment_keys:
        conv.report(
            "",
            f"{conv.comment_entries} comment-only experiment(s) and {conv.comment_keys} "
            "comment key(s) dropped (the old tool skipped them too)",
        )
    study["experiments"] = [e for e in converted if e is not None]
    if not study["experiments"]:
        raise ConfigError(path, "experiments", "no experiment could be converted (see warnings)")
    try:
        StudyFile.model_validate(study)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(path, "", f"converted study is invalid at {loc}: {err['msg']}") from None
    description = data.get("description")
    return ConvertedStudy(path, study, description if isinstance(description, str) else None)
