"""Restore one GPU's power limit; the orphan watchdog runs this when the runner died.

Usage: ``python -m hyperjoule.execution._power_restore GPU_UUID LIMIT_W``.
"""

from __future__ import annotations

import sys

from hyperjoule.meters._nvml_api import Nvml, NvmlCallError, load_nvml


def main(argv: list[str]) -> int:
    """Set the power limit of the GPU with UUID ``argv[0]`` to ``argv[1]`` watts."""
    uuid, limit_w = argv[0], float(argv[1])
    api = Nvml(load_nvml())
    try:
        api.init()
        for index in range(api.device_count()):
            handle = api.handle(index)
            if api.uuid(handle) == uuid:
                api.set_power_limit_w(handle, limit_w)
                return 0
    except NvmlCallError as e:
        sys.stderr.write(f"hyperjoule: cannot restore the power limit of {uuid}: {e}\n")
        return 1
    sys.stderr.write(f"hyperjoule: no GPU {uuid} to restore\n")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
