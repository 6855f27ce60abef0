"""Provenance of runs: host, software versions, target code version."""

from hyperjoule.provenance._collect import collect_host, collect_target_version, hyperjoule_version
from hyperjoule.provenance._devices import collect_devices, framework_versions

__all__ = [
    "collect_devices",
    "collect_host",
    "collect_target_version",
    "framework_versions",
    "hyperjoule_version",
]
