"""The checks behind ``hyperjoule doctor``; each returns :class:`Finding` lines.

Sensors and methods go through the meters' own probes and a zero-length meter window, so
the doctor reports exactly what a run would get.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hyperjoule.config import OFFLINE_ENV, LoadedStudy, Target
from hyperjoule.errors import HyperjouleError, MeterError
from hyperjoule.meters import (
    Baseline,
    MeterConfig,
    RunUsage,
    create_meters,
    load_latest_baseline,
    merge_readings,
    probe_meters,
)
from hyperjoule.meters._nvml_api import NvmlCallError, load_nvml, visible_gpu_indices
from hyperjoule.meters._nvml_info import GpuProcess, NvmlInfo
from hyperjoule.meters._rapl import discover_rapl_zones, read_energy_uj
from hyperjoule.records import ENERGY_COMPONENTS

__all__ = [
    "OFFLINE_VARS",
    "Finding",
    "Status",
    "gpu_findings",
    "method_findings",
    "rapl_permission_fix",
    "results_findings",
    "sensor_findings",
    "study_findings",
]

Status = Literal["ok", "warn", "fail"]

OFFLINE_VARS = tuple(OFFLINE_ENV)
_FALSE_VALUES = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Finding:
    """One line of the doctor's report.

    Attributes:
        area: What was checked (``sensor rapl``, ``energy gpu``, ``gpu0 processes``, ...).
        status: ``ok``; ``warn`` (measurement works, with a gap or caveat); ``fail`` (a
            study would measure wrongly or not start).
        detail: What was found.
        fix: How to fix it (empty when there is nothing to do).
    """

    area: str
    status: Status
    detail: str
    fix: str = ""


def rapl_permission_fix(powercap_root: Path) -> str:
    """The exact commands that make RAPL counters readable without root."""
    return (
        f"now (until reboot): sudo chmod o+r {powercap_root}/intel-rapl:*/energy_uj; "
        "permanently, for a group: sudo groupadd -f powercap && sudo usermod -aG powercap "
        '$USER, then write the rule \'SUBSYSTEM=="powercap", ACTION=="add", '
        'RUN+="/bin/chgrp powercap /sys%p/energy_uj", RUN+="/bin/chmod g+r '
        "/sys%p/energy_uj\"' to /etc/udev/rules.d/99-powercap.rules and run 'sudo udevadm "
        "trigger --subsystem-match=powercap --action=add' (log in again for the group)"
    )


def sensor_findings(
    config: MeterConfig, environ: Mapping[str, str], nvml: Any, has_driver: bool
) -> list[Finding]:
    """One finding per sensor kind (nvml, rapl, estimate): present, and if not, why."""
    findings: list[Finding] = []
    for probe in probe_meters(config, environ, nvml=nvml):
        if probe.name == "rapl":
            findings.append(_rapl_finding(config.powercap_root, probe.detail))
        elif probe.available:
            findings.append(Finding(f"sensor {probe.name}", "ok", probe.detail))
        elif probe.name == "nvml":
            if "pynvml" in probe.detail:
                fix = "pip install nvidia-ml-py"
            elif config.gpus is not None:
                fix = "fix the 'gpus' setting"
            else:
                fix = "check the NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES"
            # No driver and no GPU asked for: a CPU machine, nothing to fix.
            status: Status = "warn" if has_driver or config.gpus else "ok"
            fix = fix if status == "warn" else ""
            findings.append(Finding("sensor nvml", status, probe.detail, fix))
        else:
            findings.append(Finding(f"sensor {probe.name}", "warn", probe.detail))
    if not config.use_rapl:
        findings.append(Finding("sensor rapl", "warn", "RAPL disabled (use_rapl=False)"))
    return findings


def _rapl_finding(powercap_root: Path, probe_detail: str) -> Finding:
    zones = discover_rapl_zones(powercap_root)
    if not zones:
        fix = "none needed off bare-metal Linux; CPU energy will be estimated from CPU time"
        return Finding("sensor rapl", "warn", probe_detail, fix)
    denied: list[str] = []
    broken: list[str] = []
    for zone in zones:
        try:
            read_energy_uj(zone)
        except PermissionError:
            denied.append(str(zone.path / "energy_uj"))
        except (OSError, ValueError) as e:
            broken.append(f"{zone.device}: {e}")
    if denied:
        detail = (
            f"RAPL counters exist but this user (uid {os.getuid()}) cannot read "
            f"{', '.join(denied)} (root-only by default since the 2020 PLATYPUS fix); CPU "
            "energy would only be estimated"
        )
        return Finding("sensor rapl", "fail", detail, rapl_permission_fix(powercap_root))
    if broken:
        return Finding("sensor rapl", "warn", "; ".join(broken))
    return Finding("sensor rapl", "ok", probe_detail)


def method_findings(
    config: MeterConfig,
    environ: Mapping[str, str],
    nvml: Any,
    has_driver: bool,
    sensors: Sequence[Finding],
) -> list[Finding]:
    """Open and close every meter's window once: the methods a run would get."""
    try:
        meters = create_meters(config, environ, nvml=nvml)
    except MeterError as e:
        return [Finding("energy", "fail", str(e), "fix the 'gpus' setting")]
    try:
        with tempfile.TemporaryDirectory(prefix="hj-doctor-") as tmp:
            for meter in meters:
                meter.start(Path(tmp))
            readings = [meter.stop(RunUsage(duration_s=0.0, cpu_time_s=0.0)) for meter in meters]
    finally:
        for meter in meters:
            meter.close()
    energy, _ = merge_readings(readings)
    rapl_denied = any(f.area == "sensor rapl" and f.status == "fail" for f in sensors)
    findings: list[Finding] = []
    for name in ENERGY_COMPONENTS:
        comp = energy.get(name)
        area = f"energy {name}"
        where = f" on {', '.join(comp.devices)}" if comp.devices else ""
        detail = f"{comp.method}{where}" + (f": {comp.reason}" if comp.reason else "")
        if comp.method in ("counter", "integrated"):
            findings.append(Finding(area, "ok", detail))
        elif comp.method == "estimated":
            fix = (
                "make the RAPL counters readable (see 'sensor rapl')"
                if rapl_denied
                else "set cpu_watts_per_core to your CPU's TDP / cores for a closer estimate"
            )
            findings.append(Finding(area, "warn", detail, fix))
        elif name == "gpu" and not has_driver and config.gpus is None:
            findings.append(Finding(area, "ok", f"no NVIDIA GPU on this machine ({comp.reason})"))
        else:
            fix = "make the RAPL counters readable (see 'sensor rapl')" if rapl_denied else ""
            findings.append(Finding(area, "warn", detail, fix))
    return findings


def gpu_findings(
    config: MeterConfig, environ: Mapping[str, str], nvml: Any, proc_root: Path
) -> list[Finding]:
    """How ``CUDA_VISIBLE_DEVICES``/``gpus`` map to GPUs, and who else holds each GPU."""
    try:
        api = NvmlInfo(load_nvml() if nvml is None else nvml)
        api.init()
    except MeterError:
        return []  # the nvml sensor finding says why
    try:
        if api.device_count() == 0:
            return []  # the nvml sensor finding says NVML sees no GPU
        try:
            measured = visible_gpu_indices(api, config.gpus, environ)
        except NvmlCallError:
            raise
        except MeterError as e:  # a GPU that does not exist, a MIG instance: bad input
            return [Finding("gpus", "fail", str(e), "fix CUDA_VISIBLE_DEVICES or 'gpus'")]
        findings = [_visibility_finding(api, config, environ, measured)]
        for index in range(api.device_count()):
            finding = _process_finding(api, index, index in measured, proc_root)
            if finding is not None:
                findings.append(finding)
        return findings
    except NvmlCallError as e:
        return [Finding("gpus", "warn", f"cannot query the GPUs: {e}")]
    finally:
        with contextlib.suppress(NvmlCallError):
            api.shutdown()


def _gpu_label(api: NvmlInfo, index: int) -> str:
    handle = api.handle(index)
    return f"gpu{index} {api.name(handle)} ({api.uuid(handle)})"


def _visibility_finding(
    api: NvmlInfo, config: MeterConfig, environ: Mapping[str, str], measured: list[int]
) -> Finding:
    count = api.device_count()
    labels = "; ".join(_gpu_label(api, i) for i in measured) or "none"
    if config.gpus is not None:
        return Finding("gpus", "ok", f"'gpus: {config.gpus}' measures {labels}")
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        detail = f"CUDA_VISIBLE_DEVICES is not set: runs may use, and are measured on, {labels}"
        fix = "" if count <= 1 else "give runs one GPU: CUDA_VISIBLE_DEVICES=0 or 'gpus: [0]'"
        return Finding("gpus", "ok", detail, fix)
    entries = [e.strip() for e in visible.split(",")]
    uuids = [api.uuid(api.handle(i)) for i in range(count)]
    for position, entry in enumerate(entries):
        if not _is_gpu_entry(entry, uuids):
            later = f" and every later entry ({', '.join(entries[position + 1 :])})"
            detail = (
                f"CUDA_VISIBLE_DEVICES={visible!r}: entry {entry!r} is not a GPU here, so CUDA "
                f"hides it{later if position + 1 < len(entries) else ''}; measured: {labels}"
            )
            fix = f"valid entries are 0-{count - 1} or GPU UUIDs" if count else "no GPU here"
            return Finding("gpus", "warn", detail, fix)
    names = {api.name(api.handle(i)) for i in range(count)}
    uses_indices = any(e.isdigit() for e in entries)
    if len(names) > 1 and uses_indices and environ.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        detail = (
            f"CUDA_VISIBLE_DEVICES={visible!r} uses indices on a machine with different GPU "
            f"models; CUDA numbers them fastest first, NVML by PCI bus; measured: {labels}"
        )
        return Finding("gpus", "warn", detail, "export CUDA_DEVICE_ORDER=PCI_BUS_ID")
    return Finding("gpus", "ok", f"CUDA_VISIBLE_DEVICES={visible!r}: measured {labels}")


def _is_gpu_entry(entry: str, uuids: Sequence[str]) -> bool:
    if entry.isdigit():
        return int(entry) < len(uuids)
    return entry.startswith("GPU-") and sum(u.startswith(entry) for u in uuids) == 1


def _process_finding(api: NvmlInfo, index: int, measured: bool, proc_root: Path) -> Finding | None:
    area = f"gpu{index} processes"
    handle = api.handle(index)
    try:
        procs = [p for p in api.compute_processes(handle) if p.pid != os.getpid()]
    except NvmlCallError as e:
        return Finding(area, "warn", f"cannot list the processes on gpu{index}: {e}")
    if not procs:
        return Finding(area, "ok", f"gpu{index}: no compute processes") if measured else None
    described = "; ".join(_describe_process(p, proc_root) for p in procs)
    pids = " ".join(str(p.pid) for p in procs)
    use = "measured GPU: its energy would be counted as the run's" if measured else "not measured"
    detail = f"gpu{index} ({use}) is busy: {described}"
    fix = (
        f"if orphaned, check with 'ps -o pid,ppid,etime,args -p {pids.replace(' ', ',')}' "
        f"and end it: kill {pids}; or give the runs another GPU"
    )
    return Finding(area, "fail" if measured else "warn", detail, fix)


def _describe_process(proc: GpuProcess, proc_root: Path) -> str:
    memory = "memory unknown" if proc.used_memory_mib is None else f"{proc.used_memory_mib:.0f} MiB"
    base = proc_root / str(proc.pid)
    try:
        name = (base / "comm").read_text(encoding="utf-8", errors="replace").strip()
    except FileNotFoundError:
        return f"pid {proc.pid} (not visible here: another container or PID namespace), {memory}"
    except OSError:
        return f"pid {proc.pid} (name unreadable), {memory}"
    try:
        raw = (base / "cmdline").read_bytes()
        args = raw.replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        args = ""
    shown = f" [{args[:80]}{'...' if len(args) > 80 else ''}]" if args else ""
    return f"pid {proc.pid} {name}{shown}, {memory}"


def study_findings(loaded: LoadedStudy, environ: Mapping[str, str]) -> list[Finding]:
    """Per target the study uses: declared assets present, downloads forbidden or not."""
    findings: list[Finding] = []
    for name in loaded.used_targets():
        target = loaded.targets[name]
        findings.append(_assets_finding(name, target))
        findings.append(_offline_finding(name, target, environ))
    return findings


def _assets_finding(name: str, target: Target) -> Finding:
    if not target.assets:
        return Finding("assets", "ok", f"{name}: no assets declared")
    paths = [target.workdir / Path(asset).expanduser() for asset in target.assets]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        return Finding(
            "assets",
            "fail",
            f"{name}: missing {', '.join(missing)}",
            "fetch them once while online, or remove them from 'assets'",
        )
    return Finding("assets", "ok", f"{name}: all {len(paths)} declared assets present")


def _offline_finding(name: str, target: Target, environ: Mapping[str, str]) -> Finding:
    if target.offline:
        flags = ", ".join(f"{v}=1" for v in OFFLINE_VARS)
        return Finding("offline", "ok", f"{name}: offline: true, runs get {flags}")
    merged = {**environ, **target.env}
    set_vars = [
        f"{v}={merged[v]}" for v in OFFLINE_VARS if merged.get(v, "").lower() not in _FALSE_VALUES
    ]
    if set_vars:
        return Finding("offline", "ok", f"{name}: offline by environment ({', '.join(set_vars)})")
    detail = f"{name}: may download at run time (network time and energy would be measured)"
    fix = "set 'offline: true' and list the files in 'assets'"
    return Finding("offline", "warn" if target.assets else "ok", detail, fix)


def results_findings(results_dir: Path) -> list[Finding]:
    """Whether results can be written there, and the idle baseline saved in it."""
    from hyperjoule.execution._guards import check_results_dir

    try:
        check_results_dir(results_dir)
    except HyperjouleError as e:
        return [Finding("results", "fail", str(e))]
    base = results_dir.absolute()
    while not base.exists():
        base = base.parent
    free = shutil.disk_usage(base).free
    findings = [Finding("results", "ok", f"{results_dir}: writable, {free / 2**30:.1f} GiB free")]
    try:
        baseline = load_latest_baseline(results_dir)
    except HyperjouleError as e:
        return [*findings, Finding("baseline", "warn", str(e))]
    if baseline is None:
        fix = f"hyperjoule baseline --results-dir {results_dir}"
        return [*findings, Finding("baseline", "ok", "no idle baseline: no net energy", fix)]
    return [*findings, Finding("baseline", "ok", _baseline_text(baseline))]


def _baseline_text(baseline: Baseline) -> str:
    watts = ", ".join(f"{name} {w:.1f} W" for name, w in baseline.power_w.items() if w is not None)
    return f"idle baseline of {baseline.measured_at} ({baseline.duration_s:.1f} s): {watts or '-'}"
