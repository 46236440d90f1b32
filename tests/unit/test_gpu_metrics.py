"""GPU metrics from NVML, tested with a fake NVML module and with none: nothing breaks without
it, and the metrics say the figures are unavailable."""

from __future__ import annotations

import sys

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.ops.support import free_port, parse_metrics
from tests.support.engines import ToneEngine
from tests.support.fake_nvml import fake_nvml
from tests.support.server import ServerThread
from voxbatch import Client
from voxbatch_server.gpu_metrics import GpuCollector, GpuMonitor


def scrape_collector(monitor: GpuMonitor, correction: float = 1.0) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(GpuCollector(monitor, lambda: correction))
    return parse_metrics(generate_latest(registry).decode())


def test_utilisation_and_memory_of_every_visible_gpu():
    nvml = fake_nvml()
    monitor = GpuMonitor(nvml, visible=None)
    figures = scrape_collector(monitor, correction=1.25)
    assert monitor.available and figures["voxbatch_gpu_metrics_available"] == 1
    assert figures['voxbatch_gpu_utilization_ratio{gpu="0",name="NVIDIA H200"}'] == pytest.approx(0.37)
    assert figures['voxbatch_gpu_utilization_ratio{gpu="1",name="NVIDIA H200"}'] == pytest.approx(0.90)
    assert figures['voxbatch_gpu_memory_used_bytes{gpu="0",name="NVIDIA H200"}'] == 12 << 30
    assert figures['voxbatch_gpu_memory_total_bytes{gpu="1",name="NVIDIA H200"}'] == 141 << 30
    assert figures["voxbatch_memory_estimate_correction"] == 1.25
    monitor.close()
    assert nvml.calls == ["init", "shutdown"] and not monitor.available


@pytest.mark.parametrize("visible", ["1", "GPU-bbbb", " 1 "])
def test_only_the_gpus_cuda_may_use_are_reported(visible):
    figures = scrape_collector(GpuMonitor(fake_nvml(), visible=visible))
    gpus = {name for name in figures if name.startswith("voxbatch_gpu_memory_used_bytes")}
    assert gpus == {'voxbatch_gpu_memory_used_bytes{gpu="1",name="NVIDIA H200"}'}


def test_without_nvidia_ml_py_the_metrics_say_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    monitor = GpuMonitor()
    assert not monitor.available and "nvidia-ml-py is not installed" in monitor.describe()
    figures = scrape_collector(monitor)
    assert figures["voxbatch_gpu_metrics_available"] == 0
    assert not any(name.startswith(("voxbatch_gpu_utilization", "voxbatch_gpu_memory")) for name in figures)


def test_without_a_driver_or_a_gpu_the_metrics_say_unavailable():
    assert "NVML could not start: Driver Not Loaded" in GpuMonitor(fake_nvml(fail_init=True)).describe()
    hidden = GpuMonitor(fake_nvml(), visible="")
    assert not hidden.available and "no GPU" in hidden.reason


def test_a_figure_nvml_refuses_is_left_out_and_the_rest_still_scraped():
    figures = scrape_collector(GpuMonitor(fake_nvml(fail_utilization=True), visible="0"))
    assert figures["voxbatch_gpu_metrics_available"] == 1
    assert 'voxbatch_gpu_memory_used_bytes{gpu="0",name="NVIDIA H200"}' in figures
    assert not any(name.startswith("voxbatch_gpu_utilization") for name in figures)


@pytest.mark.parametrize("nvml", ["absent", "fake"])
def test_a_server_serves_with_or_without_nvml(monkeypatch, nvml):
    monkeypatch.setitem(sys.modules, "pynvml", None if nvml == "absent" else fake_nvml())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with ServerThread(ToneEngine(), metrics_port=free_port()) as server:
        with Client(server.target) as client:
            assert client.synthesize("Still speaking.").duration_seconds > 0
        figures = parse_metrics(httpx.get(f"http://127.0.0.1:{server.running.metrics_port}/metrics", timeout=5).text)
    assert figures["voxbatch_gpu_metrics_available"] == (0 if nvml == "absent" else 1)
    assert ('voxbatch_gpu_utilization_ratio{gpu="0",name="NVIDIA H200"}' in figures) == (nvml == "fake")
    assert figures["voxbatch_memory_estimate_correction"] == 1
    assert figures["voxbatch_batch_memory_measured_bytes"] == 0  # the tone engine measures nothing
