"""Pareto fronts over any number of objectives, and their hypervolume.

Everything is turned into minimisation first (a maximised objective is negated). The
hypervolume is the volume dominated by a front up to a reference point, exact by
slicing (fine for the tens to hundreds of trials of a search); with one objective it is
the distance of the best value to the reference point.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from hyperjoule.config import Objective
from hyperjoule.planning._objectives import score_record
from hyperjoule.records import RunRecord, RunStatus

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]

__all__ = [
    "describe_front",
    "feasible_points",
    "hypervolume",
    "hypervolume_curve",
    "non_dominated",
    "reference_point",
]


def non_dominated(points: FloatArray) -> npt.NDArray[np.bool_]:
    """Mask of rows no other row dominates (all objectives minimised; ties all kept)."""
    import numpy as np  # lazily: the CLI starts without numpy

    pts = np.asarray(points, dtype=np.float64)
    n = pts.shape[0]
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        others = np.delete(pts, i, axis=0)
        if others.size == 0:
            continue
        dominated = np.all(others <= pts[i], axis=1) & np.any(others < pts[i], axis=1)
        mask[i] = not dominated.any()
    return mask


def hypervolume(points: FloatArray, reference: Sequence[float]) -> float:
    """Volume dominated by ``points`` (minimised) and bounded by ``reference``."""
    import numpy as np  # lazily: the CLI starts without numpy

    ref = np.asarray(reference, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, ref.size)
    pts = pts[np.all(pts < ref, axis=1)]
    if pts.shape[0] == 0:
        return 0.0
    return _hv(pts[non_dominated(pts)], ref)


def _hv(pts: FloatArray, ref: FloatArray) -> float:
    import numpy as np  # lazily: the CLI starts without numpy

    if ref.size == 1:
        return float(ref[0] - pts[:, 0].min())
    if ref.size == 2:
        order = np.argsort(pts[:, 0])
        volume, best_y = 0.0, float(ref[1])
        for x, y in pts[order]:
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = float(y)
        return float(volume)
    # Slice along the last objective: each slab is a (d-1)-dimensional hypervolume.
    order = np.argsort(pts[:, -1])
    pts = pts[order]
    volume = 0.0
    for i in range(pts.shape[0]):
        upper = pts[i + 1, -1] if i + 1 < pts.shape[0] else ref[-1]
        depth = float(upper - pts[i, -1])
        if depth > 0:
            slab = pts[: i + 1, :-1]
            volume += depth * _hv(slab[non_dominated(slab)], ref[:-1])
    return float(volume)


def feasible_points(
    records: Sequence[RunRecord],
    objectives: Sequence[Objective],
    constraints: Mapping[str, tuple[str, float]],
) -> tuple[list[RunRecord], FloatArray]:
    """Succeeded, feasible records and their objective values, minimised."""
    import numpy as np  # lazily: the CLI starts without numpy

    kept: list[RunRecord] = []
    rows: list[list[float]] = []
    for record in records:
        if record.status is not RunStatus.SUCCEEDED:
            continue
        score = score_record(record, objectives, constraints)
        if score.values is None or not score.feasible:
            continue
        kept.append(record)
        rows.append(
            [-v if o.maximize else v for v, o in zip(score.values, objectives, strict=True)]
        )
    return kept, np.asarray(rows, dtype=np.float64).reshape(-1, len(objectives))


def reference_point(*point_sets: FloatArray, margin: float = 0.1) -> list[float] | None:
    """A reference point just worse than every point given (shared, so curves compare)."""
    import numpy as np  # lazily: the CLI starts without numpy

    stacked = [p for p in point_sets if p.size]
    if not stacked:
        return None
    allp = np.vstack(stacked)
    low, high = allp.min(axis=0), allp.max(axis=0)
    span = np.where(high > low, high - low, np.maximum(np.abs(high), 1.0))
    return [float(v) for v in high + margin * span]


def hypervolume_curve(
    records: Sequence[RunRecord],
    objectives: Sequence[Objective],
    constraints: Mapping[str, tuple[str, float]],
    reference: Sequence[float],
) -> list[float]:
    """Hypervolume of the feasible front after each record, in the order given."""
    import numpy as np  # lazily: the CLI starts without numpy

    curve: list[float] = []
    rows: list[list[float]] = []
    for record in records:
        _, pts = feasible_points([record], objectives, constraints)
        rows += pts.tolist()
        curve.append(hypervolume(np.asarray(rows, dtype=np.float64), reference) if rows else 0.0)
    return curve


def describe_front(
    records: Sequence[RunRecord],
    objectives: Sequence[Objective],
    constraints: Mapping[str, tuple[str, float]],
) -> str:
    """``front 3: energy_j 41.2 J est. / test_accuracy 0.962, ...`` for the progress line."""
    kept, pts = feasible_points(records, objectives, constraints)
    if not kept:
        return "no feasible trial yet" if constraints else "no complete trial yet"
    mask = non_dominated(pts)
    front = [r for r, on in zip(kept, mask, strict=True) if on]
    front.sort(key=lambda r: score_record(r, objectives, constraints).values or [0.0])
    shown = []
    for record in front[:3]:
        score = score_record(record, objectives, constraints)
        assert score.values is not None
        parts = []
        for obj, value in zip(objectives, score.values, strict=True):
            est = " est." if score.methods.get(obj.name) == "estimated" else ""
            parts.append(f"{obj.name} {value:.4g}{est}")
        shown.append(" / ".join(parts))
    more = f" (+{len(front) - 3})" if len(front) > 3 else ""
    return f"front {len(front)}: " + "; ".join(shown) + more
