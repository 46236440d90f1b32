"""A stand-in for the `pynvml` module (nvidia-ml-py) with the calls GpuMonitor makes, so the GPU
metrics are tested without a GPU: two devices with fixed figures, and switches to fail."""

from __future__ import annotations

import types


class NVMLError(Exception):
    pass


def fake_nvml(fail_init: bool = False, fail_utilization: bool = False) -> types.ModuleType:
    devices = [
        {"name": b"NVIDIA H200", "uuid": "GPU-aaaa", "gpu": 37, "used": 12 << 30, "total": 141 << 30},
        {"name": "NVIDIA H200", "uuid": "GPU-bbbb", "gpu": 90, "used": 100 << 30, "total": 141 << 30},
    ]
    module = types.ModuleType("pynvml")
    module.NVMLError = NVMLError
    module.calls = []

    def init():
        module.calls.append("init")
        if fail_init:
            raise NVMLError("Driver Not Loaded")

    def utilization(handle):
        if fail_utilization:
            raise NVMLError("GPU is lost")
        return types.SimpleNamespace(gpu=devices[handle]["gpu"], memory=0)

    module.nvmlInit = init
    module.nvmlShutdown = lambda: module.calls.append("shutdown")
    module.nvmlDeviceGetCount = lambda: len(devices)
    module.nvmlDeviceGetHandleByIndex = lambda index: index
    module.nvmlDeviceGetName = lambda handle: devices[handle]["name"]
    module.nvmlDeviceGetUUID = lambda handle: devices[handle]["uuid"]
    module.nvmlDeviceGetUtilizationRates = utilization
    module.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(
        used=devices[handle]["used"], total=devices[handle]["total"], free=devices[handle]["total"] - devices[handle]["used"]
    )
    return module
