"""``hyperjoule convert``: the lab's registry and settings files → targets and studies.

Everything is converted and validated in memory first. A settings file that cannot be
converted is reported and left out while the others are written; when none of them (or
the registry) converts, nothing is written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hyperjoule.errors import ConfigError, HyperjouleError
from hyperjoule.legacy._formats import LegacyWarning
from hyperjoule.legacy._registry import convert_registry, find_legacy_root
from hyperjoule.legacy._settings import ConvertedStudy, convert_settings

__all__ = ["TARGETS_FILENAME", "ConversionResult", "convert_legacy"]

logger = logging.getLogger(__name__)

TARGETS_FILENAME = "targets.yaml"
"""Name of the converted registry inside the output directory."""


@dataclass(frozen=True)
class ConversionResult:
    """What :func:`convert_legacy` wrote and reported.

    Attributes:
        targets_path: The written ``targets.yaml``.
        study_paths: One written study per settings file, in the order given.
        warnings: Every old key that could not be expressed, in file order.
        failed: Settings files that could not be converted at all, with the reason.
        legacy_root: The directory the old repository paths were read relative to.
    """

    targets_path: Path
    study_paths: list[Path]
    warnings: list[LegacyWarning]
    failed: list[ConfigError]
    legacy_root: Path


def _dump(data: dict[str, Any], header: list[str]) -> str:
    body = yaml.safe_dump(
        data, sort_keys=False, default_flow_style=None, allow_unicode=True, width=100
    )
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header)
    return comments + body


def _header(source: Path, warnings: list[LegacyWarning], description: str | None) -> list[str]:
    lines = [
        f"Converted by `hyperjoule convert` from {source} "
        "(see hyperjoule/docs/legacy.md, shipped with the package)."
    ]
    if description:
        lines += ["", " ".join(description.split())]
    mine = [w for w in warnings if w.path == source]
    if mine:
        lines += ["", "Not converted:"]
        lines += [f"  {w.key}: {w.message}" if w.key else f"  {w.message}" for w in mine]
    return lines


def _unique_names(studies: list[ConvertedStudy], warnings: list[LegacyWarning]) -> list[str]:
    """File names per study; study names made unique (two studies must not share a plan)."""
    files: list[str] = []
    names: set[str] = set()
    for study in studies:
        name = str(study.data["name"])
        if name in names:
            n = 2
            while f"{name}-{n}" in names:
                n += 1
            warnings.append(
                LegacyWarning(
                    study.source,
                    "experiment_name",
                    f"study name {name!r} is taken by another settings file; written as "
                    f"'{name}-{n}'",
                )
            )
            name = f"{name}-{n}"
            study.data["name"] = name
        names.add(name)
        stem = study.source.stem
        file_name = f"{stem}.yaml"
        n = 2
        while file_name in files or file_name == TARGETS_FILENAME:
            file_name = f"{stem}-{n}.yaml"
            n += 1
        files.append(file_name)
    return files


def convert_legacy(
    models_config: Path,
    settings: Sequence[Path] = (),
    out_dir: Path = Path("."),
    *,
    legacy_root: Path | None = None,
    overwrite: bool = False,
) -> ConversionResult:
    """Convert an old ``models_config.json`` and settings files into hyperjoule files.

    Writes ``out_dir/targets.yaml`` and one ``out_dir/<settings stem>.yaml`` per settings
    file. Keys that cannot be expressed are returned as warnings (and written as comments
    at the top of the file they came from); the rest is still converted.

    Args:
        models_config: The old registry.
        settings: Old study files.
        out_dir: Where to write; created when missing.
        legacy_root: Directory the old repository ``path`` values are relative to; by
            default the directory holding ``models_config`` or its parent, whichever
            holds the repositories (:func:`find_legacy_root`).
        overwrite: Replace files that exist already.

    Raises:
        ConfigError: The registry is missing, unreadable or malformed, or no settings
            file converts (nothing written); one bad settings file among good ones is
            returned in ``failed`` instead.
        HyperjouleError: An output file exists and ``overwrite`` is False (nothing written).
    """
    models_config = Path(models_config)
    out_dir = Path(out_dir)
    root = Path(legacy_root) if legacy_root is not None else find_legacy_root(models_config)
    warnings: list[LegacyWarning] = []
    targets = convert_registry(models_config, root, out_dir, warnings)
    unique_settings = list(dict.fromkeys(Path(p) for p in settings))
    studies: list[ConvertedStudy] = []
    failed: list[ConfigError] = []
    for settings_path in unique_settings:
        mine: list[LegacyWarning] = []
        try:
            studies.append(convert_settings(settings_path, targets, mine, TARGETS_FILENAME))
        except ConfigError as e:
            failed.append(e)  # its warnings are moot: the file is not written
            continue
        warnings += mine
    if unique_settings and not studies:
        first = failed[0]
        if len(failed) > 1:
            raise ConfigError(
                first.path,
                first.field,
                f"{first.message} (and {len(failed) - 1} other settings file(s) failed too; "
                "nothing was converted)",
                line=first.line,
            )
        raise first
    file_names = _unique_names(studies, warnings)

    outputs: dict[Path, str] = {
        out_dir / TARGETS_FILENAME: _dump(
            {"targets": {name: t.data for name, t in targets.items()}},
            _header(models_config, warnings, None),
        )
    }
    for study, file_name in zip(studies, file_names, strict=True):
        outputs[out_dir / file_name] = _dump(
            study.data, _header(study.source, warnings, study.description)
        )
    if out_dir.exists() and not out_dir.is_dir():
        raise HyperjouleError(f"{out_dir} is a file; give a directory to -o (nothing was written)")
    if not overwrite:
        existing = [p for p in outputs if p.exists()]
        if existing:
            raise HyperjouleError(
                f"{existing[0]} exists already; pass --force to replace it or choose another "
                "output directory (nothing was written)"
            )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for path, text in outputs.items():
            path.write_text(text, encoding="utf-8")
            logger.info("wrote %s", path)
    except OSError as e:
        raise HyperjouleError(f"{out_dir}: cannot write converted files: {e}") from e
    paths = list(outputs)
    return ConversionResult(paths[0], paths[1:], warnings, failed, root)
