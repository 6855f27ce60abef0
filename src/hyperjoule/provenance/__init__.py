"""Provenance of runs: host, software versions, target code version."""

from hyperjoule.provenance._collect import collect_host, collect_target_version, hyperjoule_version

__all__ = ["collect_host", "collect_target_version", "hyperjoule_version"]
