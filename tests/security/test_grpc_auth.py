"""API keys on every RPC of a real server, as an attacker would try them: no key, a wrong one, a
malformed one, a revoked one, a key without the capability; keys added, revoked and reloaded while
the server runs; the health service open; reflection behind a key; failed attempts limited per
address. One server (tone engine, cloning on) serves the module."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import grpc
import httpx
import numpy as np
import pytest
import soundfile as sf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from voxbatch.tts.v1 import tts_pb2 as pb
from voxbatch.tts.v1 import tts_pb2_grpc

from tests.support.engines import ToneEngine
from tests.support.net import free_port, wait_until
from tests.support.security import add_key, revoke_key
from tests.support.server import ServerThread
from voxbatch import AuthenticationError, Client, PermissionDeniedError, Reference

pytestmark = pytest.mark.timeout(120)


def _wav() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.sin(np.arange(16000) / 10).astype("float32") * 0.3, 16000, format="WAV")
    return buffer.getvalue()


# Every TtsService RPC, called raw (no SDK in between), with a request that succeeds given the right key.
RPCS = {
    "Synthesize": lambda stub, md: stub.Synthesize(pb.SynthesizeRequest(text="Hello there."), metadata=md, timeout=20),
    "StreamSynthesize": lambda stub, md: list(stub.StreamSynthesize(pb.StreamSynthesizeRequest(text="Hi. There."), metadata=md, timeout=20)),
    "ListVoices": lambda stub, md: stub.ListVoices(pb.ListVoicesRequest(), metadata=md, timeout=20),
    "GetServerInfo": lambda stub, md: stub.GetServerInfo(pb.GetServerInfoRequest(), metadata=md, timeout=20),
    "CreateSpeech": lambda stub, md: stub.CreateSpeech(pb.CreateSpeechRequest(input="Hello.", voice="alloy", response_format="wav"), metadata=md, timeout=20),
}
SYNTHESIS_RPCS = ("Synthesize", "StreamSynthesize", "CreateSpeech")


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    found = {
        "admin": add_key(path, "operator", ("admin",)),
        "synth": add_key(path, "app", ("synthesize",)),
        "cloner": add_key(path, "studio", ("synthesize", "clone")),
        "voices": add_key(path, "curator", ("manage-voices",)),
        "revoked": add_key(path, "former", ("admin",)),
    }
    revoke_key(path, found["revoked"][0])
    return path, {name: secret for name, (_, secret) in found.items()}, {name: key_id for name, (key_id, _) in found.items()}


@pytest.fixture(scope="module")
def server(keys):
    path, _, _ = keys
    with ServerThread(ToneEngine(cloning=True), api_keys_file=path, auth_failure_limit=0) as running:
        yield running


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.target) as ch:
        yield ch


def bearer(key: str) -> tuple:
    return (("authorization", f"Bearer {key}"),)


def code_of(call) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("rpc", RPCS)
@pytest.mark.parametrize("attempt", ["none", "empty", "wrong", "malformed", "not-bearer", "revoked", "digest-as-key"])
def test_every_rpc_refuses_a_missing_wrong_or_revoked_key(channel, keys, rpc, attempt):
    path, secrets, ids = keys
    import json

    stored_digest = next(k["sha256"] for k in json.loads(path.read_text())["keys"] if k["id"] == ids["admin"])
    metadata = {
        "none": (),
        "empty": (("authorization", "Bearer "),),
        "wrong": bearer(secrets["admin"][:-4] + "AAAA"),
        "malformed": bearer("' OR 1=1 --"),
        "not-bearer": (("authorization", f"Basic {secrets['admin']}"),),
        "revoked": bearer(secrets["revoked"]),
        "digest-as-key": bearer(stored_digest),  # what a leaked keys file holds is no key
    }[attempt]
    stub = tts_pb2_grpc.TtsServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        RPCS[rpc](stub, metadata)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "key" in caught.value.details() and secrets["admin"] not in caught.value.details()


@pytest.mark.parametrize("rpc", RPCS)
def test_every_rpc_answers_a_valid_key(channel, keys, rpc):
    _, secrets, _ = keys
    assert code_of(lambda: RPCS[rpc](tts_pb2_grpc.TtsServiceStub(channel), bearer(secrets["admin"]))) is grpc.StatusCode.OK


@pytest.mark.parametrize("rpc", RPCS)
def test_capabilities_decide_what_a_valid_key_may_call(channel, keys, rpc):
    _, secrets, _ = keys
    stub = tts_pb2_grpc.TtsServiceStub(channel)
    # synthesize: everything but cloning; manage-voices alone: reading, not synthesizing.
    assert code_of(lambda: RPCS[rpc](stub, bearer(secrets["synth"]))) is grpc.StatusCode.OK
    expected = grpc.StatusCode.PERMISSION_DENIED if rpc in SYNTHESIS_RPCS else grpc.StatusCode.OK
    assert code_of(lambda: RPCS[rpc](stub, bearer(secrets["voices"]))) is expected


def test_cloning_needs_the_clone_capability(server, keys):
    _, secrets, ids = keys
    reference = Reference(_wav(), "a test tone")
    with Client(server.target, api_key=secrets["synth"]) as client:
        with pytest.raises(PermissionDeniedError) as caught:
            client.synthesize("Hello there.", reference=reference)
        assert "'clone'" in caught.value.details and ids["synth"] in caught.value.details
        with pytest.raises(PermissionDeniedError):
            list(client.stream("Hello there.", reference=reference))
    with Client(server.target, api_key=secrets["cloner"]) as client:
        assert client.synthesize("Hello there.", reference=reference).duration_seconds > 0
    # A continuation prompt is someone's recorded voice too.
    stub = tts_pb2_grpc.TtsServiceStub(grpc.insecure_channel(server.target))
    prompt = pb.SynthesizeRequest(text="Hello.", prompt=pb.ReferenceAudio(audio=_wav(), transcript="a tone"))
    assert code_of(lambda: stub.Synthesize(prompt, metadata=bearer(secrets["synth"]), timeout=10)) is grpc.StatusCode.PERMISSION_DENIED


def test_health_stays_open_and_reflection_needs_a_key(channel, keys):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    _, secrets, _ = keys
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    assert health.Check(health_pb2.HealthCheckRequest(service="voxbatch.tts.v1.TtsService"), timeout=5).status == 1
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    ask = [reflection_pb2.ServerReflectionRequest(list_services="")]
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.ServerReflectionInfo(iter(ask), timeout=5))
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    (answer,) = list(stub.ServerReflectionInfo(iter(ask), timeout=5, metadata=bearer(secrets["synth"])))
    assert "voxbatch.tts.v1.TtsService" in {s.name for s in answer.list_services_response.service}


def test_keys_added_and_revoked_while_serving_take_effect_without_a_restart(server, keys):
    path, _, _ = keys
    key_id, secret = add_key(path, "newcomer", ("synthesize",))
    with Client(server.target, api_key=secret, timeout=10) as client:
        wait_until(lambda: _works(client), 10, "the new key to be accepted")
        revoke_key(path, key_id)
        wait_until(lambda: not _works(client), 10, "the revoked key to be refused")
        with pytest.raises(AuthenticationError):
            client.voices()


def _works(client: Client) -> bool:
    try:
        client.voices()
        return True
    except AuthenticationError:
        return False


def test_a_broken_keys_file_keeps_the_keys_loaded_before(server, keys, tmp_path):
    path, secrets, _ = keys
    good = path.read_text()
    try:
        path.write_text("{ not json")
        time.sleep(1.2)  # past the reload check interval
        with Client(server.target, api_key=secrets["synth"]) as client:
            assert client.voices().voices
        with Client(server.target, api_key="") as client, pytest.raises(AuthenticationError):
            client.voices()
    finally:
        path.write_text(good)


def test_failed_attempts_from_one_address_are_limited_even_for_a_valid_key(keys):
    path, secrets, _ = keys
    with ServerThread(ToneEngine(), api_keys_file=path, auth_failure_limit=3, auth_failure_window_s=30) as limited:
        with Client(limited.target, api_key="vbx_aaaaaaaaaa_" + "x" * 43) as client:
            for _ in range(3):
                with pytest.raises(AuthenticationError):
                    client.voices()
        with Client(limited.target, api_key=secrets["admin"]) as client:
            with pytest.raises(Exception) as caught:
                client.voices()
            assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "failed authentication attempts" in caught.value.details
            assert 25 < caught.value.retry_after_s <= 30
            assert client.health() == "SERVING"  # health checks are never limited


def test_metrics_can_bind_elsewhere_and_require_a_bearer_token(tmp_path):
    token_file = tmp_path / "metrics-token"
    token_file.write_text("s3cret-metrics-token\n")
    port = free_port()
    with ServerThread(ToneEngine(), metrics_port=port, metrics_host="127.0.0.2", metrics_token_file=token_file):
        url = f"http://127.0.0.2:{port}/metrics"
        assert httpx.get(url, timeout=5).status_code == 401
        assert httpx.get(url, headers={"authorization": "Bearer wrong"}, timeout=5).status_code == 401
        answer = httpx.get(url, headers={"authorization": "Bearer s3cret-metrics-token"}, timeout=5)
        assert answer.status_code == 200 and "voxbatch_queue_depth" in answer.text
        with pytest.raises(httpx.ConnectError):  # not on the gRPC host's address
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


# -- the keys command and the safe default -----------------------------------------------------------------


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voxbatch.cli", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_keys_command_prints_the_key_once_and_stores_only_its_digest(tmp_path):
    path = tmp_path / "keys.json"
    made = run_cli("keys", "create", "--name", "ci bot", "--capability", "synthesize", "--capability", "clone",
                   "--per-minute", "30", "--file", str(path))
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    assert key.startswith("vbx_") and len(key) > 50 and " " not in key
    stored = path.read_text()
    assert key not in stored and key.split("_")[-1] not in stored
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    listed = run_cli("keys", "list", env={"VOXBATCH_API_KEYS_FILE": str(path)})
    assert listed.returncode == 0 and "ci bot" in listed.stdout and "clone,synthesize" in listed.stdout
    assert key not in listed.stdout and "active" in listed.stdout
    key_id = key.split("_")[1]
    assert run_cli("keys", "revoke", key_id, "--file", str(path)).returncode == 0
    assert "revoked" in run_cli("keys", "list", "--file", str(path)).stdout
    assert run_cli("keys", "revoke", "nosuchkey1", "--file", str(path)).returncode == 1


def test_a_non_loopback_address_without_keys_is_refused_at_start_up(tmp_path):
    refused = run_cli("serve", "--host", "0.0.0.0", "--port", str(free_port()), "--metrics-port", "0")
    assert refused.returncode == 2
    assert "--api-keys-file" in refused.stderr and "--allow-unauthenticated" in refused.stderr
    broken = tmp_path / "keys.json"
    broken.write_text("[]")
    refused = run_cli("serve", "--api-keys-file", str(broken), "--port", str(free_port()), "--metrics-port", "0")
    assert refused.returncode == 2 and "keys file" in refused.stderr


def test_allow_unauthenticated_serves_on_all_addresses_with_a_warning(caplog):
    with caplog.at_level("WARNING"), ServerThread(ToneEngine(), host="0.0.0.0", allow_unauthenticated=True) as open_server:
        with Client(f"127.0.0.1:{open_server.running.port}") as client:
            assert client.voices().voices
    assert any("WITHOUT authentication" in r.getMessage() for r in caplog.records)


def test_voice_management_needs_manage_voices_and_saving_a_clip_needs_clone_too(channel, keys):
    _, secrets, _ = keys
    stub = tts_pb2_grpc.TtsServiceStub(channel)
    create = pb.CreateVoiceRequest(name="kept", reference=pb.ReferenceAudio(audio=_wav(), transcript="a tone"))
    delete = pb.DeleteVoiceRequest(name="kept")
    for key in ("synth", "cloner"):  # no manage-voices
        assert code_of(lambda: stub.DeleteVoice(delete, metadata=bearer(secrets[key]), timeout=10)) is grpc.StatusCode.PERMISSION_DENIED
        assert code_of(lambda: stub.CreateVoice(create, metadata=bearer(secrets[key]), timeout=10)) is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as caught:  # manage-voices alone: saving someone's recorded voice is cloning
        stub.CreateVoice(create, metadata=bearer(secrets["voices"]), timeout=10)
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED and "'clone'" in caught.value.details()
    assert code_of(lambda: stub.DeleteVoice(delete, metadata=bearer(secrets["voices"]), timeout=10)) is not grpc.StatusCode.PERMISSION_DENIED
