"""Keys, capabilities, quotas and TLS on every route through the real Envoy (deploy/envoy/envoy.yaml,
its TLS listener with certificates made at test time) in front of two real replicas that read one
keys file and share quotas through one Redis: REST, the OpenAI route (raw and with the official
client), gRPC-Web and gRPC, as an attacker would try them. One cluster serves the module."""

from __future__ import annotations

import json
import ssl

import httpx
import pytest
from voxbatch.tts.v1 import tts_pb2 as pb

from tests.support.security import add_key, make_pki, revoke_key
from voxbatch import AuthenticationError, Client, PermissionDeniedError

from .support import Envoy, RedisServer, Replica, wait_until
from .test_envoy import grpc_web_frame, grpc_web_frames

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

# Every route, with a body that succeeds given the right key.
ROUTES = {
    "synthesize": ("POST", "/v1/synthesize", {"text": "Hello through the proxy."}),
    "stream": ("POST", "/v1/synthesize:stream", {"text": "One. Two."}),
    "voices": ("GET", "/v1/voices", None),
    "server-info": ("GET", "/v1/server-info", None),
    "openai": ("POST", "/v1/audio/speech", {"model": "tts-1", "input": "Hello.", "voice": "alloy", "response_format": "wav"}),
}
SYNTHESIS_ROUTES = ("synthesize", "stream", "openai")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("envoy-auth")
    pki = make_pki(logs / "pki")
    keys_file = logs / "keys.json"
    keys = {
        "admin": add_key(keys_file, "operator", ("admin",)),
        "synth": add_key(keys_file, "app", ("synthesize",)),
        "reader": add_key(keys_file, "dashboard", ("manage-voices",)),
        "revoked": add_key(keys_file, "former", ("admin",)),
        "quota": add_key(keys_file, "metered", ("synthesize",), per_minute=3),
    }
    revoke_key(keys_file, keys["revoked"][0])
    redis = RedisServer().start()
    settings = dict(cache_mb="0", api_keys_file=str(keys_file), redis_url=redis.url, trust_forwarded_for="1",
                    auth_failure_limit="0", log_json="1")
    replicas = [Replica(name, logs, **settings) for name in ("replica-a", "replica-b")]
    envoys = []
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            wait_until(replica.ready, 90, f"{replica.name} to serve")
        ports = [r.port for r in replicas]
        envoys.append(Envoy(ports, logs, tls=(pki.server_cert, pki.server_key)).start())
        # A second Envoy with a tiny bucket, for the rate limit.
        envoys.append(Envoy(ports, logs, name="envoy-limited", tls=(pki.server_cert, pki.server_key),
                            token_bucket={"max_tokens": 2, "tokens_per_fill": 1, "fill_interval": "60s"}).start())
        for envoy in envoys:
            wait_until(lambda: envoy.healthy_hosts() == 2, 30, "Envoy's health checks to pass on both replicas")
        yield envoys[0], replicas, pki, {name: secret for name, (_, secret) in keys.items()}, envoys[1]
    finally:
        for envoy in envoys:
            envoy.stop()
        for replica in replicas:
            replica.stop()
        redis.close()


@pytest.fixture(scope="module")
def https(cluster):
    envoy, _, pki, _, _ = cluster
    with httpx.Client(base_url=envoy.url, timeout=60, verify=ssl.create_default_context(cafile=str(pki.ca))) as client:
        yield client


def call(client: httpx.Client, route: str, key: str | None, headers: dict | None = None) -> httpx.Response:
    method, path, body = ROUTES[route]
    headers = {**(headers or {}), **({"authorization": f"Bearer {key}"} if key is not None else {})}
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("attempt", ["none", "wrong", "revoked", "basic"])
def test_every_rest_route_refuses_a_missing_wrong_or_revoked_key_with_401(https, cluster, route, attempt):
    _, _, _, keys, _ = cluster
    key = {"none": None, "wrong": keys["admin"][:-3] + "xyz", "revoked": keys["revoked"], "basic": None}[attempt]
    headers = {"authorization": f"Basic {keys['admin']}"} if attempt == "basic" else None
    response = call(https, route, key, headers)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == 16 and "key" in response.json()["message"]


@pytest.mark.parametrize("route", ROUTES)
def test_every_rest_route_answers_a_valid_key_and_checks_capabilities(https, cluster, route):
    _, _, _, keys, _ = cluster
    assert call(https, route, keys["synth"]).status_code == 200
    expected = 403 if route in SYNTHESIS_ROUTES else 200
    response = call(https, route, keys["reader"])
    assert response.status_code == expected, response.text


def test_keys_added_and_revoked_while_serving_take_effect_on_both_replicas(https, cluster):
    _, replicas, _, _, _ = cluster
    keys_file = replicas[0].settings["api_keys_file"]
    from pathlib import Path

    key_id, secret = add_key(Path(keys_file), "added while serving", ("synthesize",))

    def answers() -> set[int]:  # several calls, so that both replicas answer some
        return {call(https, "voices", secret).status_code for _ in range(6)}

    # Polled slowly: Envoy's rate limit (200 at once, 100 a second) is shared by the module's tests.
    wait_until(lambda: answers() == {200}, 15, "the new key to work on both replicas", interval=0.5)
    revoke_key(Path(keys_file), key_id)
    wait_until(lambda: answers() == {401}, 15, "the revoked key to be refused by both replicas", interval=0.5)


def test_the_official_openai_client_passes_its_api_key(cluster):
    import openai

    envoy, _, pki, keys, _ = cluster
    http_client = httpx.Client(verify=ssl.create_default_context(cafile=str(pki.ca)))
    ok = openai.OpenAI(base_url=f"{envoy.url}/v1", api_key=keys["synth"], max_retries=0, http_client=http_client)
    speech = ok.audio.speech.create(model="tts-1", voice="nova", input="Hello, OpenAI client.", response_format="wav")
    assert speech.content[:4] == b"RIFF"
    for key, error in ((keys["revoked"], openai.AuthenticationError), (keys["reader"], openai.PermissionDeniedError)):
        client = openai.OpenAI(base_url=f"{envoy.url}/v1", api_key=key, max_retries=0, http_client=http_client)
        with pytest.raises(error):
            client.audio.speech.create(model="tts-1", voice="nova", input="Refused.")


@pytest.mark.parametrize("key_name,status", [(None, "16"), ("wrong", "16"), ("reader", "7"), ("synth", "0")])
def test_grpc_web_carries_the_key_in_the_authorization_header(https, cluster, key_name, status):
    _, _, _, keys, _ = cluster
    headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "origin": "https://app.example"}
    if key_name is not None:
        headers["authorization"] = f"Bearer {keys.get(key_name, 'vbx_0000000000_' + 'a' * 43)}"
    response = https.post("/voxbatch.tts.v1.TtsService/Synthesize", content=grpc_web_frame(pb.SynthesizeRequest(text="Hi, browser.")),
                          headers=headers)
    found = response.headers.get("grpc-status") or grpc_web_frames(response.content)[1].get("grpc-status")
    assert found == status


def test_grpc_through_envoy_over_tls(cluster):
    envoy, _, pki, keys, _ = cluster
    with Client(envoy.url, ca_file=pki.ca, api_key=keys["synth"], timeout=30) as client:
        assert client.synthesize("Hello, gRPC through Envoy.").duration_seconds > 0
    with Client(envoy.url, ca_file=pki.ca, api_key=keys["revoked"], timeout=30) as client, pytest.raises(AuthenticationError):
        client.voices()
    with Client(envoy.url, ca_file=pki.ca, api_key=keys["reader"], timeout=30) as client, pytest.raises(PermissionDeniedError):
        client.synthesize("Not with this key.")


def test_plaintext_and_an_untrusted_certificate_get_nothing(cluster):
    envoy, _, pki, keys, _ = cluster
    headers = {"authorization": f"Bearer {keys['synth']}"}
    with pytest.raises(httpx.HTTPError):  # HTTP spoken to the TLS port: the connection is dropped
        httpx.get(f"http://127.0.0.1:{envoy.port}/v1/voices", headers=headers, timeout=5)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{envoy.url}/v1/voices", headers=headers, timeout=5,
                  verify=ssl.create_default_context(cafile=str(pki.other_ca)))


def test_a_quota_holds_across_both_replicas_and_says_when_to_retry(https, cluster):
    _, replicas, _, keys, _ = cluster
    answers = [call(https, "synthesize", keys["quota"]) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429], [a.text for a in answers]
    body = answers[3].json()
    assert "3 requests per minute" in body["message"]
    (retry,) = body["details"]  # google.rpc.RetryInfo, as JSON: the rest of the minute
    assert retry["@type"] == "type.googleapis.com/google.rpc.RetryInfo"
    assert 0 < float(retry["retryDelay"].rstrip("s")) <= 60
    # Both replicas served some of the calls, so the count was shared, not per replica.
    served = [r.metrics().get('voxbatch_requests_total{code="OK",rpc="Synthesize"}', 0) for r in replicas]
    assert all(n >= 1 for n in served), served


def test_envoys_local_rate_limit_turns_a_flood_away_first(cluster):
    _, _, pki, keys, limited = cluster
    verify = ssl.create_default_context(cafile=str(pki.ca))
    with httpx.Client(base_url=limited.url, timeout=30, verify=verify) as client:
        codes = [client.get("/v1/voices", headers={"authorization": f"Bearer {keys['synth']}"}).status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and codes[2:] == [429, 429]
        limited_answer = client.get("/v1/voices")
        assert limited_answer.status_code == 429 and limited_answer.headers["retry-after"] == "1"
    with Client(limited.url, ca_file=pki.ca, api_key=keys["synth"], timeout=10) as grpc_client, pytest.raises(Exception) as caught:
        grpc_client.voices()
    assert caught.value.code.name == "RESOURCE_EXHAUSTED"


def test_logs_name_the_key_id_never_the_key_nor_the_text(https, cluster):
    _, replicas, _, keys, _ = cluster
    assert call(https, "synthesize", keys["synth"]).status_code == 200
    lines = [json.loads(line) for r in replicas for line in r.log().splitlines() if line.startswith("{")]
    text = json.dumps(lines)
    assert all(secret not in text for secret in keys.values())
    assert "Hello through the proxy." not in text  # request texts are not logged by default
    synth_id = keys["synth"].split("_")[1]
    assert any(line.get("key_id") == synth_id and "synthesized" in line["message"] for line in lines)
