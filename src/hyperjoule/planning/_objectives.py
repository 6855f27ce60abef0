"""What a finished run scores on a search's objectives and constraints.

Figures come from the record as measured: ``energy_j`` is the record's total (every
available component), ``gpu_energy_j`` the GPU component, ``cpu_energy_j`` package plus
DRAM, ``net_energy_j`` the net total above idle, ``duration_s`` the wall time; any other
name is a metric. Each value carries its method, so an estimate is never passed off as
a measurement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hyperjoule.config import Objective
from hyperjoule.records import METHODS, RunRecord

__all__ = ["TrialScore", "constraint_violation", "figure_value", "score_record"]


def figure_value(record: RunRecord, name: str) -> tuple[float | None, str]:
    """A record's value of an objective or constraint name and how it was obtained."""
    energy = record.energy
    if name == "energy_j":
        return energy.total_j, energy.total_method
    if name == "gpu_energy_j":
        gpu = energy.get("gpu")
        return gpu.energy_j, gpu.method
    if name == "cpu_energy_j":
        parts = [energy.get("cpu_pkg"), energy.get("cpu_dram")]
        present = [p for p in parts if p.energy_j is not None]
        if not present:
            return None, "unavailable"
        method = max((p.method for p in present), key=METHODS.index)
        return float(sum(p.energy_j for p in present if p.energy_j is not None)), method
    if name == "net_energy_j":
        net = energy.to_dict()["net_total_j"]
        return net, energy.total_method if net is not None else "unavailable"
    if name == "duration_s":
        return record.duration_s, "counter" if record.duration_s is not None else "unavailable"
    value = record.metrics.get(name)
    return value, "metric" if value is not None else "unavailable"


def constraint_violation(value: float, op: str, bound: float) -> float:
    """Optuna's convention: <= 0 when ``value op bound`` holds, else by how much it misses."""
    if op in (">=", ">"):
        return bound - value if op == ">=" or value <= bound else bound - value + 1e-12
    return value - bound if op == "<=" or value >= bound else value - bound + 1e-12


@dataclass
class TrialScore:
    """A run's objective values and constraint verdict.

    Attributes:
        values: One value per objective, in order; None when one is missing.
        methods: How each objective's figure was obtained (``estimated`` included).
        violations: One value per constraint (<= 0: met); None when a figure is missing.
        missing: Names without a value.
    """

    values: list[float] | None
    methods: dict[str, str] = field(default_factory=dict)
    violations: list[float] | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> bool:
        """True when every constraint is met (vacuously without constraints)."""
        return self.violations is not None and all(v <= 0 for v in self.violations)

    @property
    def estimated(self) -> bool:
        """True when an objective's figure is only an estimate."""
        return any(m == "estimated" for m in self.methods.values())


def score_record(
    record: RunRecord,
    objectives: Sequence[Objective],
    constraints: Mapping[str, tuple[str, float]],
) -> TrialScore:
    """Score one record (any status; a run without the figures scores None)."""
    values: list[float] = []
    methods: dict[str, str] = {}
    missing: list[str] = []
    for obj in objectives:
        value, method = figure_value(record, obj.name)
        methods[obj.name] = method
        if value is None:
            missing.append(obj.name)
        else:
            values.append(float(value))
    violations: list[float] = []
    for name, (op, bound) in constraints.items():
        value, _ = figure_value(record, name)
        if value is None:
            missing.append(name)
        else:
            violations.append(constraint_violation(float(value), op, bound))
    complete = not missing
    return TrialScore(
        values=values if complete else None,
        methods=methods,
        violations=violations if complete else None,
        missing=missing,
    )
