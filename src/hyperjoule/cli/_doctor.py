"""``hyperjoule doctor`` and ``hyperjoule baseline``: is this machine ready to measure?

:func:`diagnose` checks, without running anything, what a study's measurement would
meet: which sensors exist and which method each energy component will use (through a
zero-length meter window, the same code path as a run), unreadable RAPL counters with the
exact fix, GPUs already held by other processes (the lab once lost 1.5 days to an orphan
holding 5.5 GB), how ``CUDA_VISIBLE_DEVICES`` is read, and, for a study, whether its
targets can run offline. ``doctor`` exits 0 when no finding is ``fail``, 1 otherwise.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from hyperjoule.cli._doctor_checks import (
    Finding,
    gpu_findings,
    method_findings,
    rapl_permission_fix,
    results_findings,
    sensor_findings,
    study_findings,
)
from hyperjoule.cli._options import ResultsDir
from hyperjoule.config import load_study
from hyperjoule.meters import Baseline, MeterConfig, create_meters, measure_baseline, save_baseline

__all__ = [
    "Finding",
    "diagnose",
    "print_baseline",
    "print_findings",
    "rapl_permission_fix",
    "register",
]


def diagnose(
    config: MeterConfig,
    *,
    study_path: Path | None = None,
    results_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    nvml: Any = None,
    powercap_root: Path | None = None,
    proc_root: Path = Path("/proc"),
) -> list[Finding]:
    """Check sensors, permissions, busy GPUs, GPU visibility and offline readiness.

    Args:
        config: The measurement settings a study would use.
        study_path: A study file; its targets' assets and offline settings are checked.
        results_dir: A results directory to check for writability and a saved baseline.
        environ: The environment runs would get; ``os.environ`` by default.
        nvml: The ``pynvml`` module or a stand-in; imported lazily when None.
        powercap_root: Overrides ``config.powercap_root``.
        proc_root: Where ``/proc`` is (process names of GPU users, the NVIDIA driver).

    Raises:
        ConfigError: The study file is invalid (bad input, not a finding).
    """
    environ = os.environ if environ is None else environ
    if powercap_root is not None:
        config = dataclasses.replace(config, powercap_root=Path(powercap_root))
    loaded = load_study(study_path) if study_path is not None else None
    if loaded is not None and loaded.study.cpu_watts_per_core is not None:
        config = dataclasses.replace(config, cpu_watts_per_core=loaded.study.cpu_watts_per_core)
    has_driver = (proc_root / "driver" / "nvidia" / "version").exists()
    findings = sensor_findings(config, environ, nvml, has_driver)
    findings += method_findings(config, environ, nvml, has_driver, findings)
    findings += gpu_findings(config, environ, nvml, proc_root)
    if loaded is not None:
        findings += study_findings(loaded, environ)
    if results_dir is not None:
        findings += results_findings(Path(results_dir))
    return findings


# Command line -------------------------------------------------------------------------

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def _console() -> Any:
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def print_findings(findings: Sequence[Finding]) -> None:
    """Print the findings as a table (area, status, detail, fix)."""
    from rich.table import Table

    table = Table(show_lines=True)
    for column in ("area", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for f in findings:
        table.add_row(f.area, f"[{_STYLE[f.status]}]{f.status}[/]", f.detail, f.fix)
    console = _console()
    console.print(table)
    counts = {s: sum(f.status == s for f in findings) for s in ("ok", "warn", "fail")}
    console.print(f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail")


def print_baseline(baseline: Baseline) -> None:
    """Print a baseline's idle power per component."""
    from rich.table import Table

    table = Table(title=f"idle baseline, {baseline.duration_s:.1f} s from {baseline.measured_at}")
    for column in ("component", "idle power W", "method", "devices", "note"):
        table.add_column(column, overflow="fold")
    for name, power_w in baseline.power_w.items():
        table.add_row(
            name,
            "-" if power_w is None else f"{power_w:.2f}",
            baseline.methods.get(name, ""),
            ", ".join(baseline.devices.get(name, [])),
            baseline.reasons.get(name, ""),
        )
    console = _console()
    console.print(table)
    temp = "-" if baseline.gpu_temp_c is None else f"{baseline.gpu_temp_c:.1f} °C"
    console.print(f"GPU temperature at idle: {temp}")


def register(app: typer.Typer) -> None:
    """Add ``doctor`` and ``baseline`` to the ``hyperjoule`` app."""

    @app.command()
    def doctor(
        study: Annotated[
            Path | None, typer.Argument(help="Study file: also check its targets' assets.")
        ] = None,
        results_dir: ResultsDir = Path("results"),
    ) -> None:
        """Check sensors, permissions, GPUs in use and offline readiness; exit 1 on a failure."""
        findings = diagnose(MeterConfig(), study_path=study, results_dir=results_dir)
        print_findings(findings)
        if any(f.status == "fail" for f in findings):
            raise typer.Exit(1)

    @app.command()
    def baseline(
        duration_s: Annotated[
            float, typer.Option("--duration-s", min=0.1, help="Length of the idle window, s.")
        ] = 30.0,
        results_dir: ResultsDir = Path("results"),
    ) -> None:
        """Measure the machine's idle power (keep it idle) and save it for net energy."""
        from hyperjoule.execution._guards import check_results_dir

        check_results_dir(results_dir)
        meters = create_meters(MeterConfig())
        typer.echo(f"measuring idle power for {duration_s:g} s; keep the machine idle")
        try:
            measured = measure_baseline(meters, duration_s)
        finally:
            for meter in meters:
                meter.close()
        path = save_baseline(results_dir, measured)
        print_baseline(measured)
        if all(w is None for w in measured.power_w.values()):
            typer.echo("no component could be measured at idle: runs will have no net energy")
        typer.echo(f"saved {path} (and {path.parent / 'latest.json'})")
