"""`voxbatch serve` processes on free loopback ports for the benchmarks, always stopped, and a
description of the machine they ran on."""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

START_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServeProcess:
    """One `voxbatch serve` on 127.0.0.1 with the given flags (without leading dashes:
    engine="piper", max_batch_size=1, ...). `threads` sets OMP_NUM_THREADS for torch."""

    def __init__(self, name: str, threads: int | None = None, **flags) -> None:
        self.name = name
        self.port = free_port()
        self.flags = {"host": "127.0.0.1", "port": self.port, "metrics_port": 0, "cache_mb": 0,
                      "log_level": "warning", **flags}
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if threads:
            self.env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        self.log = Path(tempfile.mkstemp(prefix=f"voxbatch-{name}-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> ServeProcess:
        args = [sys.executable, "-m", "voxbatch.cli", "serve"]
        for key, value in self.flags.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        try:
            self._wait_serving()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at start-up:\n{self.log.read_text()[-3000:]}")
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise TimeoutError(f"{self.name} did not start in {START_TIMEOUT_S:.0f} s:\n{self.log.read_text()[-3000:]}")

    def rss_mib(self) -> float:
        with open(f"/proc/{self.process.pid}/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    def __exit__(self, *exc) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f}, {five:.2f}, {fifteen:.2f}"


def describe_machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem = next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
        memory = f"{int(mem.split()[1]) / 2**20:.1f} GiB RAM"
    except (OSError, StopIteration):
        memory = "memory unknown"
    versions = [f"Python {platform.python_version()}", f"grpcio {grpc.__version__}"]
    for module in ("onnxruntime", "torch"):
        try:
            versions.append(f"{module} {__import__(module).__version__}")
        except ImportError:
            pass
    return f"{model}, {os.cpu_count()} cores, {memory}; {platform.system()} {platform.release()}; {', '.join(versions)}"
