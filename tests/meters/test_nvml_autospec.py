"""The NVML meter against the real ``pynvml`` module's signatures (autospec, no GPU).

The hand-written stand-in in ``fake_nvml.py`` could drift from NVIDIA's bindings; here the
real module is patched at hyperjoule's import site with ``create_autospec``, so a call
with a wrong name or argument count fails exactly as it would on a GPU machine.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest

from hyperjoule.meters import NvmlMeter, RunUsage

pynvml = pytest.importorskip("pynvml")


def _autospec(energy_mj: list[int] | None) -> Any:
    module = mock.create_autospec(pynvml, instance=False)
    module.NVMLError = pynvml.NVMLError
    module.NVMLError_NotSupported = pynvml.NVMLError_NotSupported
    module.NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    module.NVML_CLOCK_SM = pynvml.NVML_CLOCK_SM
    module.nvmlDeviceGetCount.return_value = 1
    module.nvmlDeviceGetHandleByIndex.return_value = "handle-0"
    module.nvmlDeviceGetName.return_value = "NVIDIA H100 80GB HBM3"
    module.nvmlDeviceGetUUID.return_value = "GPU-12345678-0000-0000-0000-000000000000"
    if energy_mj is None:  # a GPU without the energy counter (pre-Volta)
        module.nvmlDeviceGetTotalEnergyConsumption.side_effect = pynvml.NVMLError_NotSupported()
    else:
        module.nvmlDeviceGetTotalEnergyConsumption.side_effect = energy_mj
    module.nvmlDeviceGetPowerUsage.return_value = 300_000  # mW
    module.nvmlDeviceGetTemperature.return_value = 61
    module.nvmlDeviceGetUtilizationRates.return_value = SimpleNamespace(gpu=97, memory=40)
    module.nvmlDeviceGetMemoryInfo.return_value = SimpleNamespace(used=2**33, total=2**36)
    module.nvmlDeviceGetClockInfo.return_value = 1980
    module.nvmlDeviceGetComputeRunningProcesses.return_value = []
    return module


@pytest.mark.parametrize("counter", [True, False])
def test_meter_calls_match_the_real_bindings(tmp_path: Path, counter: bool) -> None:
    # Counter readings at start and stop: 1,000,000 mJ then 1,450,000 mJ = 450 J.
    nvml = _autospec([1_000_000, 1_450_000, 1_450_000] if counter else None)
    with mock.patch("hyperjoule.meters._nvml.load_nvml", return_value=nvml):
        meter = NvmlMeter(sampling_period_s=0.05)
        meter.start(tmp_path)
        reading = meter.stop(RunUsage(duration_s=1.5, cpu_time_s=1.0))
        meter.close()
    gpu = reading.components["gpu"]
    if counter:
        assert gpu.method == "counter" and gpu.energy_j == pytest.approx(450.0)
    else:
        assert gpu.method == "integrated" and gpu.energy_j is not None and gpu.energy_j > 0
    assert gpu.devices and "H100" in gpu.devices[0]
    assert reading.power is not None and reading.power.gpu_max_w == pytest.approx(300.0)
    # Every NVML function was called with the arguments the real signatures accept.
    nvml.nvmlDeviceGetHandleByIndex.assert_called_with(0)
    nvml.nvmlDeviceGetTemperature.assert_called_with("handle-0", pynvml.NVML_TEMPERATURE_GPU)
