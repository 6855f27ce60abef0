"""Energy-aware search: what tpe and nsga2 buy over random search, and what pruning saves.

The objective is **in-process and synthetic** (stated as such): the model of
``tests/fixtures/search/synthetic_train.py`` (accuracy from lr, epochs, width, weight
decay, optimiser; energy proportional to epochs x width, i.e. its CPU work), evaluated
without launching processes so that hundreds of trials per sampler take seconds. Every
proposal goes through hyperjoule's real search code: the study file is loaded and
validated, ``SearchProposer`` maps the declared space to Optuna (log scales, ints,
choices, the conditional zero of weight decay), asks, and is told ``RunRecord`` objects
as the runner would tell it.

1. Hypervolume of the (energy, accuracy) front after N trials for tpe, nsga2 and random,
   median over seeds, and the trials tpe/nsga2 need to reach random's final hypervolume
   (goal: at most 60 % of N).
2. Pruning (median pruner on per-epoch validation accuracy, min_epochs 2): energy spent
   until a configuration meets ``test_accuracy >= 0.95`` (and 0.97) with pruning vs
   without, same sampler (tpe) and seeds (goal: at most 70 %). A pruned trial costs the
   epochs it ran. Two families of learning curves: ``crossing`` (the script's: a higher
   learning rate learns faster but levels off lower, so early rankings mislead) and
   ``parallel`` (every configuration learns at the same rate).

Usage: ``python benchmarks/bench_search.py [--trials 40] [--seeds 7]``.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from hyperjoule.config import load_study  # noqa: E402
from hyperjoule.planning import (  # noqa: E402
    SearchProposer,
    hypervolume,
    search_setups,
)
from hyperjoule.records import (  # noqa: E402
    EnergyBlock,
    EnergyComponent,
    RunRecord,
    RunSpec,
    RunStatus,
)
from search_support import SearchProject, synthetic_target  # noqa: E402

J_PER_EPOCH_UNIT = 0.02  # J per epoch per width unit of 16: the script's CPU work
STARTUP_J = 0.3  # interpreter start-up, paid by every run
# Reference point (energy J, -accuracy): the region worth searching, better than a
# mid-sized run (10 epochs at width 64) and 0.8 accuracy.
REFERENCE = (STARTUP_J + J_PER_EPOCH_UNIT * 10 * 64 / 16, -0.8)


def space() -> dict[str, Any]:
    target = synthetic_target()
    target["hyperparameters"]["epochs"]["range"] = [1, 30]
    target["hyperparameters"]["width"]["range"] = [4, 256]
    return target


CURVES = {"crossing": True}  # set by --curves


def curve(hp: dict[str, Any], epoch: int) -> float:
    """Validation accuracy after ``epoch`` epochs (synthetic_train.py's model).

    ``crossing`` curves (the script's): a higher learning rate learns faster but levels
    off lower, so early rankings mislead. ``parallel``: every configuration learns at the
    same rate, so the early ranking is the final one.
    """
    lr, width = float(hp["lr"]), float(hp["width"])
    cap = 0.99 - 0.08 * (math.log10(lr) - math.log10(0.03)) ** 2
    cap -= 0.12 * math.exp(-width / 24.0)
    cap -= 0.01 if float(hp["wd"]) == 0 else 0.0
    cap -= 0.015 if hp["optim"] == "sgd" else 0.0
    rate = 0.35 + 0.5 * min(1.0, lr * 10) if CURVES["crossing"] else 0.5
    return max(0.0, cap) * (1.0 - math.exp(-rate * epoch))


def epoch_j(hp: dict[str, Any]) -> float:
    return J_PER_EPOCH_UNIT * float(hp["width"]) / 16.0


def record_of(
    spec: RunSpec, epochs_run: int, status: RunStatus, clock: int, noise: random.Random
) -> RunRecord:
    hp = spec.hyperparameters
    energy_j = (STARTUP_J + epoch_j(hp) * epochs_run) * noise.uniform(0.97, 1.03)
    acc = curve(hp, epochs_run)
    points = [{"epoch": float(e), "val_accuracy": curve(hp, e)} for e in range(1, epochs_run + 1)]
    return RunRecord(
        run_id=f"r{clock}",
        study="bench",
        session="s",
        slot_id=spec.slot_id,
        target=spec.target,
        model=spec.model,
        mode="search",
        hyperparameters=dict(hp),
        mutated=list(spec.mutated),
        dedup_key=spec.dedup_key,
        status=status,
        attempts=1,
        started_at=f"{clock:08d}",
        duration_s=1.0,
        metrics={} if status is RunStatus.PRUNED else {"test_accuracy": acc},
        energy=EnergyBlock({"cpu_pkg": EnergyComponent(energy_j=energy_j, method="counter")}),
        search={**(spec.search or {}), "intermediate": points},
    )


def make_setup(root: Path, sampler: str, seed: int, trials: int, **extra: Any) -> Any:
    project = SearchProject(root)
    project.write_targets({"synth": space()})
    experiment = {
        "target": "synth",
        "mode": "search",
        "search": "all",
        "objectives": {"energy_j": "minimize", "test_accuracy": "maximize"},
        "trials": trials,
        "sampler": sampler,
        **extra,
    }
    path = project.write_study([experiment], name=f"{sampler}{seed}", seed=seed)
    return search_setups(load_study(path))[0]


def run_search(
    setup: Any, seed: int, *, stop_when_feasible: bool = False, threshold: float = 0.95
) -> list[RunRecord]:
    """Drive the proposer like the runner does; return the records in order."""
    proposer = SearchProposer(setup, [])
    noise = random.Random(seed)
    records: list[RunRecord] = []
    while (spec := proposer.ask()) is not None:
        epochs = int(spec.hyperparameters["epochs"])
        ran, status = epochs, RunStatus.SUCCEEDED
        for epoch in range(1, epochs + 1):
            if proposer.report(spec.slot_id, epoch, curve(spec.hyperparameters, epoch)):
                ran, status = epoch, RunStatus.PRUNED
                break
        record = record_of(spec, ran, status, len(records), noise)
        proposer.tell(record)
        records.append(record)
        feasible = status is RunStatus.SUCCEEDED and record.metrics["test_accuracy"] >= threshold
        if stop_when_feasible and feasible:
            break
    return records


def hv_curve(records: list[RunRecord]) -> list[float]:
    rows: list[list[float]] = []
    out = []
    box = REFERENCE[0] * (1.0 + REFERENCE[1])  # normalise: energy 0..ref, accuracy ref..1
    for r in records:
        if r.status is RunStatus.SUCCEEDED and r.energy.total_j is not None:
            rows.append([r.energy.total_j, -r.metrics["test_accuracy"]])
        pts = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
        out.append(hypervolume(pts, REFERENCE) / box if rows else 0.0)
    return out


def first_reaching(values: list[float], level: float) -> int | None:
    for n, v in enumerate(values, start=1):
        if v >= level:
            return n
    return None


def compare_samplers(tmp: Path, n: int, seeds: list[int]) -> None:
    curves: dict[str, list[list[float]]] = {}
    for sampler in ("random", "tpe", "nsga2"):
        curves[sampler] = [
            hv_curve(run_search(make_setup(tmp / f"{sampler}{s}", sampler, s, n), s)) for s in seeds
        ]
    print("\n1. hypervolume (normalised) after N trials, median over seeds")
    checkpoints = sorted({n // 4, n // 2, 3 * n // 4, n})
    print("   sampler  " + "  ".join(f"N={k:<4}" for k in checkpoints))
    for sampler, per_seed in curves.items():
        meds = [statistics.median(c[k - 1] for c in per_seed) for k in checkpoints]
        print(f"   {sampler:<8} " + "  ".join(f"{m:.4f}" for m in meds))
    for sampler in ("tpe", "nsga2"):
        fractions = []
        for k, c in enumerate(curves[sampler]):
            reached = first_reaching(c, curves["random"][k][-1])
            fractions.append((reached if reached is not None else math.inf) / n)
        med = statistics.median(fractions)
        shown = "never" if math.isinf(med) else f"{med:.0%}"
        print(
            f"   {sampler}: trials to reach random's final hypervolume (same seed): "
            f"median {shown} of {n} (goal <= 60%); per seed "
            + ", ".join("never" if math.isinf(f) else f"{f:.0%}" for f in fractions)
        )


def compare_pruning(
    tmp: Path, n: int, seeds: list[int], prune: dict[str, Any], threshold: float
) -> None:
    spent: dict[str, list[float]] = {"none": [], "pruned": []}
    found: dict[str, int] = {"none": 0, "pruned": 0}
    for s in seeds:
        for kind in ("none", "pruned"):
            extra: dict[str, Any] = {"constraints": {"test_accuracy": f">= {threshold}"}}
            if kind == "pruned":
                extra["prune"] = prune
            setup = make_setup(tmp / f"p{kind}{s}{threshold}", "tpe", s, 4 * n, **extra)
            records = run_search(setup, s, stop_when_feasible=True, threshold=threshold)
            last = records[-1]
            ok = last.status is RunStatus.SUCCEEDED and last.metrics["test_accuracy"] >= threshold
            found[kind] += int(ok)
            spent[kind].append(sum(r.energy.total_j or 0.0 for r in records))
    none_j, pruned_j = statistics.median(spent["none"]), statistics.median(spent["pruned"])
    ratios = [p / q for p, q in zip(spent["pruned"], spent["none"], strict=True)]
    curves = "crossing" if CURVES["crossing"] else "parallel"
    print(
        f"   {curves:<9} >= {threshold:<5} {none_j:7.2f} J ({found['none']}/{len(seeds)})"
        f"   {pruned_j:7.2f} J ({found['pruned']}/{len(seeds)})"
        f"   {pruned_j / none_j:6.0%}   {statistics.median(ratios):6.0%}"
    )


def real_cli(tmp: Path, n: int, seeds: list[int]) -> None:
    """tpe vs random through ``hyperjoule run`` on the synthetic script (real processes)."""
    import contextlib
    import io

    from hyperjoule.cli import main as cli
    from hyperjoule.planning import feasible_points, hypervolume_curve, reference_point
    from hyperjoule.storage import ResultsStore
    from search_support import search_experiment

    print(f"\n3. through the CLI on the synthetic script: {n} trials, {len(seeds)} seeds")
    fractions, finals = [], {"random": [], "tpe": []}
    methods: set[str] = set()
    for s in seeds:
        records: dict[str, list[RunRecord]] = {}
        for sampler in ("random", "tpe"):
            project = SearchProject(tmp / f"real-{sampler}-{s}")
            # Enough CPU work per epoch that energy depends on epochs x width, not mostly
            # on the interpreter's start-up.
            project.write_targets({"synth": synthetic_target(args=["--work-ms", "8"])})
            study = project.write_study(
                [search_experiment(trials=n, sampler=sampler)], name=sampler, seed=s
            )
            with contextlib.redirect_stdout(io.StringIO()):
                code = cli(["run", str(study), "--results-dir", str(project.results)])
            assert code == 0, f"run failed ({code})"
            with ResultsStore(project.results, create=False) as store:
                records[sampler] = list(store.iter_runs())
            methods |= {r.energy.total_method for r in records[sampler]}
        setup = make_setup(tmp / f"real-setup-{s}", "tpe", s, n)
        objectives, constraints = setup.objectives, setup.constraints
        points = [feasible_points(records[k], objectives, constraints)[1] for k in records]
        ref = reference_point(*points)
        assert ref is not None
        ideal = np.vstack(points).min(axis=0)
        box = float(np.prod(np.asarray(ref) - ideal))
        curves = {
            k: [v / box for v in hypervolume_curve(records[k], objectives, constraints, ref)]
            for k in records
        }
        for k in curves:
            finals[k].append(curves[k][-1])
        reached = first_reaching(curves["tpe"], curves["random"][-1])
        fractions.append((reached if reached is not None else math.inf) / n)
    print(
        f"   energy method: {', '.join(sorted(methods))}; hypervolume in the box of both "
        "samplers' points, per seed"
    )
    for k, values in finals.items():
        print(f"   {k:<7} final hypervolume: " + ", ".join(f"{v:.3f}" for v in values))
    med = statistics.median(fractions)
    print(
        "   tpe: trials to reach random's final hypervolume: median "
        + ("never" if math.isinf(med) else f"{med:.0%}")
        + f" of {n}; per seed "
        + ", ".join("never" if math.isinf(f) else f"{f:.0%}" for f in fractions)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=7)
    parser.add_argument("--pruner", choices=["median", "hyperband"], default="median")
    parser.add_argument("--min-epochs", type=int, default=2)
    parser.add_argument("--only-pruning", action="store_true")
    parser.add_argument(
        "--real", type=int, default=0, metavar="N", help="also N trials through the CLI"
    )
    parser.add_argument("--threshold", type=float, nargs="+", default=[0.95, 0.97])
    parser.add_argument(
        "--curves", choices=["crossing", "parallel"], nargs="+", default=["crossing", "parallel"]
    )
    args = parser.parse_args()
    n, seeds = args.trials, list(range(1, args.seeds + 1))
    print(f"in-process synthetic objective; {n} trials; median over {len(seeds)} seeds")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.only_pruning:
            CURVES["crossing"] = True  # the model of the bundled synthetic script
            compare_samplers(Path(tmp), n, seeds)
        prune = {"metric": "val_accuracy", "pruner": args.pruner, "min_epochs": args.min_epochs}
        print(
            f"\n2. energy until a trial meets the constraint (tpe; pruning: {args.pruner}, "
            f"min_epochs {args.min_epochs}); median over seeds (found in k of n seeds)\n"
            "   curves    constraint  no pruning         pruning            ratio    "
            "median of per-seed ratios (goal <= 70%)"
        )
        for curves in args.curves:
            CURVES["crossing"] = curves == "crossing"
            for threshold in args.threshold:
                compare_pruning(Path(tmp), n, seeds, prune, threshold)
        if args.real:
            real_cli(Path(tmp), args.real, seeds[:3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
