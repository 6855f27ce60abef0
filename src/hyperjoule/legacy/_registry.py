"""The old ``models_config.json`` registry → the ``targets`` mapping of ``targets.yaml``.

Each old repository becomes a target of the same name (so imported runs and new runs of
it share a target name, and dedup sees both). What the schema cannot take is reported as
a :class:`~hyperjoule.legacy.LegacyWarning` and left out; what makes no sense at all
(no ``path``, a hyperparameter without a flag) is a :class:`ConfigError`.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hyperjoule.config import Hyperparameter, MetricSpec, Target
from hyperjoule.errors import ConfigError
from hyperjoule.legacy._formats import LegacyWarning, is_comment_key, read_json_object

__all__ = ["DEFAULT_MODEL", "LegacyTarget", "convert_registry", "find_legacy_root"]

DEFAULT_MODEL = "default"
"""The old registry's model name for "this repository has one model, pass no flag"."""

_REPO_KEYS = {
    "path",
    "train_script",
    "models",
    "model_flag",
    "required_args",
    "supported_hyperparams",
    "performance_metrics",
}
_HP_KEYS = {"flag", "type", "default", "range", "choices", "distribution", "zero_probability"}
_TYPES = {
    "int": "int",
    "integer": "int",
    "float": "float",
    "double": "float",
    "str": "choice",
    "string": "choice",
    "choice": "choice",
    "categorical": "choice",
}
_DISTRIBUTIONS = {
    "uniform": "uniform",
    "log_uniform": "log_uniform",
    "loguniform": "log_uniform",
    "log-uniform": "log_uniform",
    "log": "log_uniform",
}


@dataclass
class LegacyTarget:
    """One converted repository: its ``targets.yaml`` entry and what the settings need.

    Attributes:
        data: The ``targets.yaml`` entry, ready to dump.
        target: The same entry, validated.
        legacy_models: The model names the old registry listed.
        omitted: Old hyperparameter names left out of ``data`` (each was reported).
    """

    data: dict[str, Any]
    target: Target
    legacy_models: list[str]
    omitted: set[str] = field(default_factory=set)

    def model_for(self, legacy_model: str | None) -> str | None:
        """The hyperjoule model of an old model name (``default`` → no model)."""
        if self.target.models is None:
            return None
        if legacy_model is None and len(self.target.models) == 1:
            return None  # the loader picks the only model
        return legacy_model


def _command(script: str) -> list[str]:
    parts = shlex.split(script)
    if len(parts) > 1:
        # A script given with its interpreter or arguments: keep it as written.
        return ["{python}" if p in ("python", "python3") else p for p in parts]
    script = parts[0]
    if script.endswith(".py"):
        return ["{python}", script]
    if script.endswith(".sh"):
        # The lab ran its wrappers through bash; they were not always executable.
        return ["bash", script]
    if "/" not in script:
        script = "./" + script  # argv[0] without a slash would be looked up on PATH
    return [script]


def _split_args(value: Any, path: Path, where: str) -> list[str]:
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list):
        return [arg for item in value for arg in _split_args(item, path, where)]
    if isinstance(value, dict):
        return [arg for k, item in value.items() for arg in _split_args(item, path, f"{where}.{k}")]
    raise ConfigError(path, where, f"expected an argument string, got {value!r}")


def _hyperparameter(
    spec: Any, path: Path, where: str, warnings: list[LegacyWarning]
) -> dict[str, Any] | None:
    if not isinstance(spec, dict):
        raise ConfigError(
            path, where, "a hyperparameter must be an object with flag, type, default"
        )
    for key in spec:
        if key not in _HP_KEYS:
            warnings.append(LegacyWarning(path, f"{where}.{key}", "unknown key; not converted"))
    flag = spec.get("flag")
    if not isinstance(flag, str) or not flag:
        raise ConfigError(path, f"{where}.flag", "required: the command-line flag (e.g. --epochs)")
    old_type = str(spec.get("type", "")).lower()
    kind = _TYPES.get(old_type)
    if kind is None:
        warnings.append(
            LegacyWarning(
                path,
                f"{where}.type",
                f"type {spec.get('type')!r} is not int, float or str; hyperparameter left out "
                "(the script uses its own default)",
            )
        )
        return None
    if "choices" in spec and kind != "choice":
        kind = "choice"  # e.g. an int batch size restricted to a few values
    out: dict[str, Any] = {"flag": flag, "type": kind, "default": spec.get("default")}
    if kind == "choice":
        out["choices"] = list(spec.get("choices") or [spec.get("default")])
        if "range" in spec:
            warnings.append(
                LegacyWarning(path, f"{where}.range", "a text hyperparameter has no range; ignored")
            )
    elif spec.get("range") is not None:
        out["range"] = spec["range"]
    distribution = spec.get("distribution")
    if distribution is not None and kind != "choice":
        mapped = _DISTRIBUTIONS.get(str(distribution).lower())
        if mapped is None:
            warnings.append(
                LegacyWarning(
                    path,
                    f"{where}.distribution",
                    f"distribution {distribution!r} is unknown; uniform is used",
                )
            )
        elif mapped != "uniform":
            out["distribution"] = mapped
    if spec.get("zero_probability"):
        out["zero_probability"] = spec["zero_probability"]
    try:
        Hyperparameter.model_validate(out)
    except ValidationError as e:
        problem = str(e.errors()[0]["msg"]).removeprefix("Value error, ")
        warnings.append(
            LegacyWarning(path, where, f"cannot be expressed ({problem}); hyperparameter left out")
        )
        return None
    return out


def _metrics(
    spec: Any, path: Path, where: str, warnings: list[LegacyWarning]
) -> dict[str, dict[str, str]]:
    if not isinstance(spec, dict):
        raise ConfigError(path, where, "performance_metrics must be an object with log_patterns")
    for key in spec:
        if key != "log_patterns":
            warnings.append(LegacyWarning(path, f"{where}.{key}", "unknown key; not converted"))
    patterns = spec.get("log_patterns") or {}
    if not isinstance(patterns, dict):
        raise ConfigError(path, f"{where}.log_patterns", "must map metric names to regexes")
    metrics: dict[str, dict[str, str]] = {}
    for name, regex in patterns.items():
        key = f"{where}.log_patterns.{name}"
        if not isinstance(regex, str):
            warnings.append(LegacyWarning(path, key, "not a single regex; metric left out"))
            continue
        # The old runner kept the last match (its aggregator the first); runs imported
        # from its results carry the runner's value, so new runs read the same one.
        entry = {"regex": regex, "match": "last"}
        try:
            MetricSpec.model_validate(entry)
        except ValidationError as e:
            problem = str(e.errors()[0]["msg"]).removeprefix("Value error, ")
            warnings.append(LegacyWarning(path, key, f"{problem}; metric left out"))
            continue
        metrics[name] = entry
    return metrics


def _models(
    repo: str, spec: dict[str, Any], path: Path, where: str, warnings: list[LegacyWarning]
) -> tuple[list[str], dict[str, Any]]:
    models = spec.get("models")
    if models is None:
        models = [DEFAULT_MODEL]
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise ConfigError(path, f"{where}.models", "must be a list of model names")
    legacy = list(dict.fromkeys(models))
    if legacy == [DEFAULT_MODEL]:
        if spec.get("model_flag"):
            warnings.append(
                LegacyWarning(
                    path,
                    f"{where}.model_flag",
                    "the only model is 'default', which takes no flag; not converted",
                )
            )
        return legacy, {}
    flag = spec.get("model_flag")
    if not isinstance(flag, str) or not flag:
        raise ConfigError(
            path, f"{where}.model_flag", f"repository {repo!r} lists models but no model_flag"
        )
    if DEFAULT_MODEL in legacy:
        warnings.append(
            LegacyWarning(
                path,
                f"{where}.models",
                f"model 'default' next to others cannot mean 'no flag' here; it is passed "
                f"as {flag} default",
            )
        )
    return legacy, {"models": legacy, "model_flag": flag}


def _workdir(value: Any, path: Path, where: str, legacy_root: Path, out_dir: Path) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(path, where, "required: the repository directory")
    old = Path(value).expanduser()
    if old.is_absolute():
        return old.as_posix()
    # targets.yaml resolves workdirs against its own directory: re-anchor the old path,
    # relative while both live in one tree, absolute when only "/" is common to them.
    repo_dir = legacy_root.resolve() / old
    target_dir = out_dir.resolve()
    if os.path.commonpath([repo_dir, target_dir]) == repo_dir.anchor:
        return repo_dir.as_posix()
    return Path(os.path.relpath(repo_dir, target_dir)).as_posix()


def find_legacy_root(models_config: Path) -> Path:
    """The directory the old registry's repository paths are relative to.

    The lab kept the registry in ``config/`` and the repositories in ``repos/`` one level
    up, while simpler layouts keep both side by side: the registry's directory is tried
    first, then its parent; the one where more repository directories exist wins.
    Falls back to the registry's directory when neither holds any.
    """
    first = Path(models_config).parent
    candidates = [first, first.parent]
    try:
        data = json.loads(Path(models_config).read_text(encoding="utf-8"))
        repos = data.get("models") if isinstance(data, dict) else None
    except (OSError, UnicodeDecodeError, ValueError):
        return first  # convert_registry reports what is wrong with the file
    paths = [
        spec["path"]
        for spec in (repos.values() if isinstance(repos, dict) else [])
        if isinstance(spec, dict) and isinstance(spec.get("path"), str) and spec["path"]
    ]
    relative = [Path(p).expanduser() for p in paths if not Path(p).expanduser().is_absolute()]
    found = [sum((root / p).is_dir() for p in relative) for root in candidates]
    best = max(range(len(candidates)), key=lambda i: (found[i], -i))
    return candidates[best] if found[best] else first


def convert_registry(
    path: Path, legacy_root: Path, out_dir: Path, warnings: list[LegacyWarning]
) -> dict[str, LegacyTarget]:
    """Convert an old ``models_config.json`` into targets, appending what is reported.

    Args:
        path: The old registry file.
        legacy_root: Directory the old ``path`` values are relative to.
        out_dir: Directory ``targets.yaml`` will be written to.
        warnings: Receives one entry per key that cannot be expressed.

    Raises:
        ConfigError: The file is unreadable or a repository entry is malformed.
    """
    data = read_json_object(path, "models config")
    first_new = len(warnings)
    for key in data:
        if key != "models":
            warnings.append(LegacyWarning(path, key, "unknown key; not converted"))
    repos = data.get("models")
    if not isinstance(repos, dict) or not repos:
        raise ConfigError(path, "models", "required: an object mapping repositories to entries")
    converted: dict[str, LegacyTarget] = {}
    skipped_entries = 0
    for repo, spec in repos.items():
        where = f"models.{repo}"
        if is_comment_key(repo) and not isinstance(spec, dict):
            skipped_entries += 1  # {"_comment": "--- re-id models ---"}: a separator
            continue
        if not isinstance(spec, dict):
            raise ConfigError(path, where, "a repository entry must be an object")
        for key in spec:
            if key not in _REPO_KEYS:
                warnings.append(LegacyWarning(path, f"{where}.{key}", "unknown key; not converted"))
        script = spec.get("train_script")
        if not isinstance(script, str) or not script.strip():
            raise ConfigError(path, f"{where}.train_script", "required: the training script")
        entry: dict[str, Any] = {
            "workdir": _workdir(spec.get("path"), path, f"{where}.path", legacy_root, out_dir),
            "command": _command(script),
        }
        legacy_models, model_data = _models(repo, spec, path, where, warnings)
        entry.update(model_data)
        args = _split_args(spec.get("required_args") or [], path, f"{where}.required_args")
        if args:
            # Old arguments are literal: braces in them are not hyperjoule placeholders.
            entry["args"] = [a.replace("{", "{{").replace("}", "}}") for a in args]
        entry, omitted = _with_hyperparameters(entry, spec, path, where, warnings)
        metrics = _metrics(
            spec.get("performance_metrics") or {}, path, where + ".performance_metrics", warnings
        )
        if metrics:
            entry["metrics"] = metrics
        try:
            target = Target.model_validate(entry)
        except ValidationError as e:
            problem = str(e.errors()[0]["msg"]).removeprefix("Value error, ")
            raise ConfigError(path, where, f"cannot be converted: {problem}") from None
        converted[repo] = LegacyTarget(entry, target, legacy_models, omitted)
    _fold_comments(path, warnings, first_new, skipped_entries)
    return converted


def _fold_comments(path: Path, warnings: list[LegacyWarning], first_new: int, entries: int) -> None:
    """Replace one warning per ``comment`` key by one summary line for the file."""
    mine = warnings[first_new:]
    comments = [w for w in mine if is_comment_key(w.key.rsplit(".", 1)[-1])]
    if not comments and not entries:
        return
    warnings[first_new:] = [w for w in mine if w not in comments]
    warnings.append(
        LegacyWarning(
            path,
            "",
            f"{entries} comment-only entr{'y' if entries == 1 else 'ies'} and "
            f"{len(comments)} comment key{'' if len(comments) == 1 else 's'} dropped",
        )
    )


def _with_hyperparameters(
    entry: dict[str, Any],
    spec: dict[str, Any],
    path: Path,
    where: str,
    warnings: list[LegacyWarning],
) -> tuple[dict[str, Any], set[str]]:
    hps = spec.get("supported_hyperparams") or {}
    if not isinstance(hps, dict):
        raise ConfigError(path, f"{where}.supported_hyperparams", "must map names to objects")
    out: dict[str, Any] = {}
    omitted: set[str] = set()
    for name, hp_spec in hps.items():
        converted = _hyperparameter(
            hp_spec, path, f"{where}.supported_hyperparams.{name}", warnings
        )
        if converted is None:
            omitted.add(name)
        else:
            out[name] = converted
    flags = [hp["flag"] for hp in out.values()]
    dupes = sorted({f for f in flags if flags.count(f) > 1})
    if dupes:
        raise ConfigError(
            path,
            f"{where}.supported_hyperparams",
            f"several hyperparameters use the flag {dupes[0]}",
        )
    if out:
        entry["hyperparameters"] = out
    return entry, omitted
