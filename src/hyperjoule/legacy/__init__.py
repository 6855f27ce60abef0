"""Bringing the lab workflow's files along: convert its configs, import its results.

* :func:`convert_legacy` turns the old ``models_config.json`` registry into
  ``targets.yaml`` and each old ``settings/*.json`` into a study;
* :func:`import_legacy` reads old ``experiment.json``, ``summary.csv`` and
  ``raw_data.csv`` files into the results database as an imported study.

What the old files say that hyperjoule cannot express is reported as
:class:`LegacyWarning` entries, never dropped silently. The old format and the mapping
are described in ``hyperjoule/docs/legacy.md`` (shipped with the package).
"""

from hyperjoule.legacy._build import LEGACY_CPU_METHOD, LEGACY_GPU_METHOD, LEGACY_REASON
from hyperjoule.legacy._convert import TARGETS_FILENAME, ConversionResult, convert_legacy
from hyperjoule.legacy._formats import LegacyWarning
from hyperjoule.legacy._identity import TIME_TOLERANCE_S, Conflict, Duplicate
from hyperjoule.legacy._import import (
    DEFAULT_IMPORT_STUDY,
    FileReport,
    ImportResult,
    import_legacy,
    legacy_run_id,
    read_legacy_results,
)
from hyperjoule.legacy._settings import LEGACY_COOLDOWN_S, LEGACY_MAX_RETRIES
from hyperjoule.legacy._typing import infer_kind

__all__ = [
    "DEFAULT_IMPORT_STUDY",
    "LEGACY_COOLDOWN_S",
    "LEGACY_CPU_METHOD",
    "LEGACY_GPU_METHOD",
    "LEGACY_MAX_RETRIES",
    "LEGACY_REASON",
    "TARGETS_FILENAME",
    "TIME_TOLERANCE_S",
    "Conflict",
    "ConversionResult",
    "Duplicate",
    "FileReport",
    "ImportResult",
    "LegacyWarning",
    "convert_legacy",
    "import_legacy",
    "infer_kind",
    "legacy_run_id",
    "read_legacy_results",
]
