"""Devices of a node: shared meters answering concurrent keyed windows, process accounting.

One long-lived meter per device (:class:`SharedMeter`) measures every attempt that runs
on it; when attempts overlap, the device's energy is apportioned between them by their
measured CPU time, so the shares add up to the device's energy::

    devices = NodeDevices()
    window = devices.open_window("run-1/1", gpus=(0,), environ=env, run_dir=run_dir)
    window.attach(pgid)               # the run's process group, for apportioning
    readings = window.close(RunUsage(duration_s, cpu_time_s))
"""

from hyperjoule.devices._node import EnergyWindow, GpuSelection, NodeDevices, node_gpus, node_name
from hyperjoule.devices._procfs import CLK_TCK, group_cpu_s, group_cpu_ticks, groups_cpu_ticks
from hyperjoule.devices._shared import SharedMeter

__all__ = [
    "CLK_TCK",
    "EnergyWindow",
    "GpuSelection",
    "NodeDevices",
    "SharedMeter",
    "group_cpu_s",
    "group_cpu_ticks",
    "groups_cpu_ticks",
    "node_gpus",
    "node_name",
]
