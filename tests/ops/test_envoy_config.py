"""deploy/envoy/: the descriptor set is fresh, and the configuration is valid for Envoy itself
(its own protobuf schema from xds-protos, and `envoy --mode validate`) and says what we mean."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest
import yaml
from google.protobuf import descriptor_pb2, json_format
from voxbatch.tts.v1 import tts_pb2

from voxbatch_server.server import SERVICE_NAME

from .support import DESCRIPTOR, ENVOY_CONFIG, ROOT, envoy_binary, free_port, render_envoy_config


def test_descriptor_set_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "proto.py"), "check-descriptor"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_descriptor_set_holds_the_service_and_every_import_the_transcoder_needs():
    files = {f.name: f for f in descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR.read_bytes()).file}
    assert {"google/api/annotations.proto", "google/api/http.proto", "google/api/httpbody.proto",
            "google/protobuf/descriptor.proto", "google/protobuf/any.proto"} <= files.keys()
    service = next(s for s in files["voxbatch/tts/v1/tts.proto"].service if s.name == "TtsService")
    expected = [m.name for m in tts_pb2.DESCRIPTOR.services_by_name["TtsService"].methods]
    assert [m.name for m in service.method] == expected
    speech = next(m for m in service.method if m.name == "CreateSpeech")
    assert speech.output_type == ".google.api.HttpBody"


def _load_type_modules(node) -> None:
    """Import the xds-protos modules defining every `@type` in the config, so Any fields resolve."""
    if isinstance(node, dict):
        url = node.get("@type")
        if url:
            package = url.split("/")[-1].rsplit(".", 1)[0]
            module = importlib.import_module(package)
            for info in pkgutil.iter_modules(module.__path__):
                if info.name.endswith("_pb2"):
                    importlib.import_module(f"{package}.{info.name}")
        for value in node.values():
            _load_type_modules(value)
    elif isinstance(node, list):
        for value in node:
            _load_type_modules(value)


def test_configuration_matches_envoys_own_schema():
    from envoy.config.bootstrap.v3 import bootstrap_pb2

    config = yaml.safe_load(ENVOY_CONFIG.read_text())
    _load_type_modules(config)
    bootstrap = json_format.ParseDict(config, bootstrap_pb2.Bootstrap())  # unknown fields or wrong types raise
    assert [listener.name for listener in bootstrap.static_resources.listeners] == ["voxbatch", "envoy_ops"]


@pytest.mark.timeout(60)
def test_envoy_accepts_the_configuration(tmp_path):
    from tests.support.security import make_pki

    pki = make_pki(tmp_path / "pki")
    config = render_envoy_config(free_port(), free_port(), free_port(), [free_port(), free_port()],
                                 tls=(pki.server_cert, pki.server_key))
    path = tmp_path / "envoy.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [envoy_binary(), "--mode", "validate", "-c", str(path), "--base-id", str(free_port())],
        capture_output=True, text=True, timeout=50,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "configuration" in result.stdout and "OK" in result.stdout


def _http_filters(config: dict, listener: str) -> list[dict]:
    found = next(item for item in config["static_resources"]["listeners"] if item["name"] == listener)
    return found["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]


def test_configuration_says_what_the_deployment_relies_on():
    config = yaml.safe_load(ENVOY_CONFIG.read_text())
    filters = _http_filters(config, "voxbatch")
    assert [f["name"] for f in filters] == [
        "envoy.filters.http.cors", "envoy.filters.http.local_ratelimit", "envoy.filters.http.grpc_web",
        "envoy.filters.http.grpc_json_transcoder", "envoy.filters.http.router",
    ]
    transcoder = filters[3]["typed_config"]
    # TLS from the files the Secret (Kubernetes) or deploy/secrets/tls (compose) provides.
    listener = next(item for item in config["static_resources"]["listeners"] if item["name"] == "voxbatch")
    tls = listener["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"]
    assert tls["tls_certificates"] == [{"certificate_chain": {"filename": "/etc/envoy-tls/tls.crt"},
                                        "private_key": {"filename": "/etc/envoy-tls/tls.key"}}]
    assert filters[1]["typed_config"]["rate_limited_as_resource_exhausted"] is True
    assert listener["filter_chains"][0]["filters"][0]["typed_config"]["use_remote_address"] is True
    assert transcoder["services"] == [SERVICE_NAME]
    assert transcoder["proto_descriptor"] == "/etc/envoy/voxbatch.pb"  # where compose and Kubernetes mount it
    assert transcoder["convert_grpc_status"] is True
    cluster = next(c for c in config["static_resources"]["clusters"] if c["name"] == "voxbatch")
    assert cluster["lb_policy"] == "LEAST_REQUEST"
    assert cluster["health_checks"][0]["grpc_health_check"]["service_name"] == SERVICE_NAME
    assert cluster["outlier_detection"]["consecutive_local_origin_failure"] >= 1
    assert "http2_protocol_options" in cluster["typed_extension_protocol_options"][
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert endpoint == {"address": "voxbatch", "port_value": 50051}  # compose service / headless Service name
    route = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
        "route_config"]["virtual_hosts"][0]["routes"][0]["route"]
    retry_on = set(route["retry_policy"]["retry_on"].split(","))
    assert {"connect-failure", "refused-stream", "unavailable", "cancelled"} <= retry_on
    assert "resource-exhausted" not in retry_on and "internal" not in retry_on  # never retry real answers
