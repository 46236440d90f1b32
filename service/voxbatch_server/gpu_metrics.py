"""GPU utilisation and memory from NVML (the `nvidia-ml-py` package, module `pynvml`), read at
scrape time, for the Prometheus endpoint.

NVML is optional: without the package, without a driver, or without a GPU, the server runs as
before, `voxbatch_gpu_metrics_available` is 0 and the start-up log says why once. The devices
reported are the ones this process may use: NVML numbers every GPU of the machine, so a
`CUDA_VISIBLE_DEVICES` of indices or UUIDs narrows them (in Kubernetes the device plugin already
shows a container only its own). Per-node figures for a whole cluster come from NVIDIA's DCGM
exporter (README, "GPU metrics"); these are the server's own view, next to its batches.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GpuReading:
    index: str  # NVML's index, as a label
    name: str
    utilization_ratio: float | None  # share of the last sample period a kernel ran (0-1)
    memory_used_bytes: int | None
    memory_total_bytes: int | None


class GpuMonitor:
    """NVML handles of the visible GPUs, or the reason there are none."""

    def __init__(self, nvml: Any | None = None, visible: str | None = None) -> None:
        self._nvml = None
        self._devices: list[tuple[str, str, Any]] = []  # (index, name, handle)
        self._lock = threading.Lock()
        self.reason = ""
        try:
            if nvml is None:
                import pynvml as nvml  # nvidia-ml-py
            nvml.nvmlInit()
        except ImportError:
            self.reason = "nvidia-ml-py is not installed (pip install 'voxbatch[gpu]')"
            return
        except Exception as error:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ...
            self.reason = f"NVML could not start: {error}"
            return
        try:
            wanted = _visible(visible if visible is not None else os.environ.get("CUDA_VISIBLE_DEVICES"))
            for index in range(nvml.nvmlDeviceGetCount()):
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                if wanted is not None and str(index) not in wanted and _text(nvml.nvmlDeviceGetUUID(handle)) not in wanted:
                    continue
                self._devices.append((str(index), _text(nvml.nvmlDeviceGetName(handle)), handle))
        except Exception as error:
            self.reason = f"NVML could not list the GPUs: {error}"
            self._devices = []
        if not self._devices:
            self.reason = self.reason or "NVML sees no GPU this process may use"
            _shutdown(nvml)
            return
        self._nvml = nvml

    @property
    def available(self) -> bool:
        return self._nvml is not None

    def describe(self) -> str:
        if not self.available:
            return f"GPU metrics unavailable: {self.reason}"
        return "GPU metrics from NVML: " + ", ".join(f"{index} {name}" for index, name, _ in self._devices)

    def read(self) -> list[GpuReading]:
        """One reading per GPU; a figure NVML refuses (a GPU fallen off the bus) is None."""
        if not self.available:
            return []
        nvml = self._nvml
        readings = []
        with self._lock:
            for index, name, handle in self._devices:
                utilization = memory = None
                try:
                    utilization = nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0
                except Exception:  # noqa: BLE001 - one figure missing must not break the scrape
                    pass
                try:
                    memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                except Exception:  # noqa: BLE001
                    pass
                readings.append(GpuReading(
                    index, name, utilization,
                    None if memory is None else int(memory.used), None if memory is None else int(memory.total),
                ))
        return readings

    def close(self) -> None:
        with self._lock:
            if self._nvml is not None:
                _shutdown(self._nvml)
                self._nvml = None
                self.reason = "closed"


class GpuCollector(Collector):
    """The GPU gauges, read from NVML when Prometheus scrapes, and the memory estimate's
    correction factor (the batcher's, from measured peaks)."""

    def __init__(self, monitor: GpuMonitor, correction=lambda: 1.0) -> None:
        self._monitor = monitor
        self._correction = correction

    def collect(self) -> Iterator[Metric]:
        readings = self._monitor.read()
        yield GaugeMetricFamily(
            "voxbatch_gpu_metrics_available",
            "1 when GPU utilisation and memory come from NVML, 0 when unavailable (no nvidia-ml-py, driver or GPU).",
            value=1 if readings else 0,
        )
        families = {
            "utilization": GaugeMetricFamily(
                "voxbatch_gpu_utilization_ratio", "Share of the last NVML sample period a kernel ran on the GPU (0-1).",
                labels=["gpu", "name"]),
            "used": GaugeMetricFamily("voxbatch_gpu_memory_used_bytes", "GPU memory in use (all processes).", labels=["gpu", "name"]),
            "total": GaugeMetricFamily("voxbatch_gpu_memory_total_bytes", "GPU memory in all.", labels=["gpu", "name"]),
        }
        for r in readings:
            for key, value in (("utilization", r.utilization_ratio), ("used", r.memory_used_bytes), ("total", r.memory_total_bytes)):
                if value is not None:
                    families[key].add_metric([r.index, r.name], value)
        yield from families.values()
        yield GaugeMetricFamily(
            "voxbatch_memory_estimate_correction",
            "Factor the batcher applies to the engine's memory estimates, from measured peaks that ran above them (1: none).",
            value=self._correction(),
        )


def _visible(value: str | None) -> set[str] | None:
    if value is None:
        return None  # unset: every GPU (an empty value hides them all)
    return {part.strip() for part in value.split(",") if part.strip()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:  # noqa: BLE001
        pass
