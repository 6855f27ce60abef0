"""Energy meters: one measurement window around each run, per component.

A :class:`Meter` measures some of the energy components (``gpu``, ``cpu_pkg``,
``cpu_dram``) between ``start`` and ``stop``; :func:`create_meters` probes the machine
and returns the meters it supports; :func:`merge_readings` turns their readings into a
record's energy and power blocks, keeping the most trustworthy figure per component::

    meters = create_meters(MeterConfig())
    for meter in meters:
        meter.start(run_dir)
    ...  # the training process runs
    energy, power = merge_readings([m.stop(RunUsage(duration_s, cpu_time_s)) for m in meters])
"""

from hyperjoule.meters._base import (
    Meter,
    MeterReading,
    ProbeResult,
    RunUsage,
    merge_readings,
    readings_so_far,
    unavailable_reading,
)
from hyperjoule.meters._baseline import (
    Baseline,
    GpuTemperatureReader,
    gpu_temperature_reader,
    load_latest_baseline,
    measure_baseline,
    net_energy,
    net_energy_with_reason,
    save_baseline,
    wait_until_idle,
)
from hyperjoule.meters._estimate import EstimateMeter, UnavailableMeter
from hyperjoule.meters._factory import MeterConfig, create_meters, probe_meters
from hyperjoule.meters._fake import FakeMeter, PowerTrace
from hyperjoule.meters._nvml import NvmlMeter
from hyperjoule.meters._nvml_api import load_nvml
from hyperjoule.meters._rapl import RaplMeter
from hyperjoule.meters._sampler import trapezoid_energy_j

__all__ = [
    "Baseline",
    "EstimateMeter",
    "FakeMeter",
    "GpuTemperatureReader",
    "Meter",
    "MeterConfig",
    "MeterReading",
    "NvmlMeter",
    "PowerTrace",
    "ProbeResult",
    "RaplMeter",
    "RunUsage",
    "UnavailableMeter",
    "create_meters",
    "gpu_temperature_reader",
    "load_latest_baseline",
    "load_nvml",
    "measure_baseline",
    "merge_readings",
    "readings_so_far",
    "unavailable_reading",
    "net_energy",
    "net_energy_with_reason",
    "probe_meters",
    "save_baseline",
    "trapezoid_energy_j",
    "wait_until_idle",
]
