"""REST, gRPC-Web and gRPC through the real Envoy (deploy/envoy/envoy.yaml) in front of two real
server replicas (`voxbatch serve` processes on the embedded Piper voice), all on loopback.

The replicas and Envoy start once for this module. The last test stops a replica for good, so it
stays last."""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import struct
import threading

import httpx
import numpy as np
import pytest
import soundfile as sf
from voxbatch.tts.v1 import tts_pb2 as pb

from voxbatch import Client

from .support import Envoy, Replica, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

RATE = 22050


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    logs = tmp_path_factory.mktemp("envoy-cluster")
    # No cache, so that load is real work; JSON logs, for the structured-log test.
    replicas = [Replica(name, logs, cache_mb="0", log_json="1") for name in ("replica-a", "replica-b")]
    envoy = None
    try:
        for replica in replicas:
            replica.start()
        for replica in replicas:
            wait_until(replica.ready, 90, f"{replica.name} to serve")
        envoy = Envoy([r.port for r in replicas], logs).start()
        wait_until(lambda: envoy.healthy_hosts() == 2, 30, "Envoy's health checks to pass on both replicas")
        yield envoy, replicas
    finally:
        if envoy is not None:
            envoy.stop()
        for replica in replicas:
            replica.stop()


@pytest.fixture(scope="module")
def rest(cluster):
    envoy, _ = cluster
    with httpx.Client(base_url=envoy.url, timeout=60) as client:
        yield client


def decode(data: bytes) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(io.BytesIO(data), dtype="float32")
    return samples, rate


# -- REST through the gRPC-JSON transcoder ---------------------------------------------------------


def test_rest_synthesize_answers_json_with_base64_audio(rest):
    response = rest.post("/v1/synthesize", json={"text": "Hello from the REST interface.", "requestId": "rest-1"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["encoding"] == "AUDIO_ENCODING_WAV" and body["sampleRateHz"] == RATE and body["requestId"] == "rest-1"
    assert body["timings"]["batchSize"] >= 1 and body["timings"]["cacheHit"] is False
    samples, rate = decode(base64.b64decode(body["audio"]))
    assert rate == RATE and len(samples) / rate == pytest.approx(body["durationSeconds"], abs=0.01)
    assert np.abs(samples).max() > 0.1


def test_rest_voices_and_server_info(rest):
    voices = rest.get("/v1/voices").json()
    assert voices["defaultVoice"] == "joe" and voices["voices"][0]["name"] == "joe"
    info = rest.get("/v1/server-info").json()
    assert info["engine"] == "piper" and info["batching"]["maxBatchSize"] == 1  # Piper computes rows in turn on a CPU
    assert "AUDIO_ENCODING_MP3" in info["encodings"]


def test_rest_stream_is_one_json_message_per_line(rest):
    text = "The first sentence is short. The second one is longer than the first. A third closes it."
    with rest.stream("POST", "/v1/synthesize:stream", json={"text": text, "encoding": "AUDIO_ENCODING_PCM_S16LE"}) as response:
        assert response.status_code == 200
        chunks = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert [c["sequence"] for c in chunks] == list(range(len(chunks)))
    # Work items: a stream ramps up from the first sentence alone, so these three stay apart.
    assert [c["sentenceIndex"] for c in chunks] == [0, 1, 2] and all(c["sentenceCount"] == 3 for c in chunks)
    assert [c["final"] for c in chunks] == [False, False, True]
    assert chunks[1]["textStart"] == text.index("The second")
    pcm = b"".join(base64.b64decode(c["audio"]) for c in chunks)
    samples = np.frombuffer(pcm, "<i2")
    assert len(samples) / RATE == pytest.approx(sum(c["durationSeconds"] for c in chunks), abs=0.01)


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/v1/synthesize", {"text": "   "}, 400, "empty"),
        ("/v1/synthesize", {"text": "Hello.", "voice": "nobody"}, 400, "unknown voice"),
        ("/v1/synthesize", {"text": "Hello.", "sampleRateHz": 7}, 400, "out of range"),
        ("/v1/synthesize:stream", {"text": "Hello.", "encoding": "AUDIO_ENCODING_FLAC"}, 400, "cannot be streamed"),
        ("/v1/audio/speech", {"model": "tts-1", "input": "Hi.", "voice": "alloy", "response_format": "aac"}, 400, "AAC"),
        ("/v1/audio/speech", {"model": "tts-1", "input": "Hi.", "voice": "alloy", "speed": 9}, 400, "speed must be"),
        # instructions reach the server through both routes (Piper cannot follow them, and says so)
        ("/v1/synthesize", {"text": "Hello.", "instructions": "a warm voice"}, 400, "cannot follow instructions"),
        ("/v1/audio/speech", {"model": "gpt-4o-mini-tts", "input": "Hi.", "voice": "alloy", "instructions": "calm"},
         400, "cannot follow instructions"),
    ],
)
def test_rest_errors_are_http_statuses_with_a_json_message(rest, path, body, status, words):
    response = rest.post(path, json=body)
    assert response.status_code == status, response.text
    error = response.json()
    assert error["code"] == 3  # INVALID_ARGUMENT
    assert words in error["message"]


def test_unknown_rest_paths_are_404(rest):
    assert rest.get("/v1/nothing-here").status_code == 404


# -- the OpenAI-compatible route ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "content_type", "rate"),
    [("mp3", "audio/mpeg", RATE), ("opus", "audio/ogg;codecs=opus", 48000), ("flac", "audio/flac", RATE), ("wav", "audio/wav", RATE)],
)
def test_openai_speech_answers_raw_audio_bytes(rest, fmt, content_type, rate):
    request = {"model": "tts-1", "input": "Raw audio bytes for an OpenAI client.", "voice": "alloy", "response_format": fmt}
    response = rest.post("/v1/audio/speech", json=request)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    samples, got_rate = decode(response.content)
    assert got_rate == rate and len(samples) > rate and np.abs(samples).max() > 0.05


def test_openai_speech_pcm_is_24_khz_and_speed_changes_the_length(rest):
    def seconds(**extra) -> float:
        request = {"model": "tts-1", "input": "How fast can this be said?", "voice": "joe", "response_format": "pcm", **extra}
        response = rest.post("/v1/audio/speech", json=request)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "audio/pcm;rate=24000;channels=1"
        return len(response.content) / 2 / 24000

    assert seconds(speed=2.0) < 0.7 * seconds()


def test_the_official_openai_client_works_unchanged(cluster, tmp_path):
    from openai import OpenAI

    envoy, _ = cluster
    client = OpenAI(base_url=f"{envoy.url}/v1", api_key="not-checked", max_retries=0)
    speech = client.audio.speech.create(model="tts-1", voice="nova", input="Hello from the OpenAI client.", response_format="wav")
    speech.write_to_file(tmp_path / "speech.wav")
    samples, rate = sf.read(tmp_path / "speech.wav")
    assert rate == RATE and len(samples) > RATE // 2
    from openai import BadRequestError

    with pytest.raises(BadRequestError, match="AAC"):
        client.audio.speech.create(model="tts-1", voice="nova", input="Hi.", response_format="aac")


# -- gRPC-Web and gRPC through the same listener ---------------------------------------------------------


def grpc_web_frame(message) -> bytes:
    data = message.SerializeToString()
    return b"\x00" + struct.pack(">I", len(data)) + data


def grpc_web_frames(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    messages, trailers, offset = [], {}, 0
    while offset < len(body):
        flag, length = body[offset], struct.unpack(">I", body[offset + 1 : offset + 5])[0]
        payload = body[offset + 5 : offset + 5 + length]
        offset += 5 + length
        if flag & 0x80:
            for line in payload.decode().strip().split("\r\n"):
                key, _, value = line.partition(":")
                trailers[key.strip().lower()] = value.strip()
        else:
            messages.append(payload)
    return messages, trailers


def test_grpc_web_for_browsers(rest):
    headers = {"content-type": "application/grpc-web+proto", "x-grpc-web": "1", "origin": "https://app.example"}
    request = pb.SynthesizeRequest(text="Hello, browser.", encoding=pb.AUDIO_ENCODING_OGG_OPUS)
    response = rest.post("/voxbatch.tts.v1.TtsService/Synthesize", content=grpc_web_frame(request), headers=headers)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    messages, trailers = grpc_web_frames(response.content)
    assert trailers["grpc-status"] == "0"
    reply = pb.SynthesizeResponse.FromString(messages[0])
    samples, rate = decode(reply.audio)
    assert rate == 48000 and len(samples) > rate // 2

    bad = rest.post("/voxbatch.tts.v1.TtsService/Synthesize", content=grpc_web_frame(pb.SynthesizeRequest(text=" ")), headers=headers)
    status = bad.headers.get("grpc-status") or grpc_web_frames(bad.content)[1].get("grpc-status")
    assert status == "3"


def test_cors_preflight_allows_grpc_web_headers(rest):
    response = rest.options(
        "/voxbatch.tts.v1.TtsService/Synthesize",
        headers={"origin": "https://app.example", "access-control-request-method": "POST",
                 "access-control-request-headers": "content-type,x-grpc-web,x-user-agent,grpc-timeout"},
    )
    assert response.status_code == 200
    allowed = response.headers["access-control-allow-headers"]
    assert all(h in allowed for h in ("x-grpc-web", "x-user-agent", "grpc-timeout"))
    assert "grpc-status" in response.headers["access-control-expose-headers"]


def test_grpc_clients_go_through_the_same_listener(cluster):
    envoy, _ = cluster
    with Client(envoy.target) as client:
        audio = client.synthesize("Plain gRPC through Envoy.")
        chunks = list(client.stream("One. Two."))
        assert client.health() == "SERVING"
    assert audio.duration_seconds > 0.5 and chunks[-1].final


# -- structured logs ---------------------------------------------------------------------------------------


def test_replicas_log_one_json_object_per_line_with_request_and_batch_fields(rest, cluster):
    _, replicas = cluster
    assert rest.post("/v1/synthesize", json={"text": "A logged request. In two sentences.", "requestId": "log-me-1"}).status_code == 200
    assert rest.post("/v1/synthesize", json={"text": "", "requestId": "log-me-2"}).status_code == 400

    def entries(replica: Replica) -> list[dict]:
        complete = replica.log().split("\n")[:-1]  # the last piece may be a line still being written
        return [json.loads(line) for line in complete if line.strip()]  # each line is one JSON object

    def outcomes() -> set[str]:
        return {e.get("request_id") for r in replicas for e in entries(r) if "outcome" in e}

    wait_until(lambda: {"log-me-1", "log-me-2"} <= outcomes(), 10, "both requests' outcome lines")
    served = next(r for r in replicas if any(e.get("request_id") == "log-me-1" for e in entries(r)))
    logged = entries(served)  # batch ids count per replica
    ok = next(e for e in logged if e.get("request_id") == "log-me-1" and e.get("outcome") == "ok")
    assert ok["sentences"] == 2 and ok["batch_size"] >= 1 and ok["queue_wait_s"] >= 0 and ok["batch_ids"]
    batches = [e for e in logged if e.get("batch_id") in ok["batch_ids"] and "memory_estimate_bytes" in e]
    assert batches and all("log-me-1" in b["request_ids"] and b["memory_estimate_bytes"] > 0 for b in batches)
    assert all(b["memory_budget_bytes"] == 2048 << 20 and b["outcome"] == "ok" for b in batches)
    logged = [e for r in replicas for e in entries(r)]
    refused = next(e for e in logged if e.get("request_id") == "log-me-2" and "outcome" in e)
    assert refused["outcome"] == "INVALID_ARGUMENT" and refused["rpc"] == "Synthesize" and refused["level"] == "info"


def test_rest_callers_name_themselves_to_the_scheduler_through_envoy(rest, cluster):
    # The x-voxbatch-client header reaches the server as gRPC metadata: fair share and the
    # per-caller cap count by it (a browser may send it too: CORS allows it).
    _, replicas = cluster
    response = rest.post("/v1/synthesize", json={"text": "Who is asking?", "requestId": "caller-1"},
                         headers={"x-voxbatch-client": "rest-app-7"})
    assert response.status_code == 200, response.text

    def callers() -> set[str]:
        return {
            json.loads(line).get("caller") for r in replicas for line in r.log().split("\n")[:-1]
            if '"caller-1"' in line and '"caller"' in line
        }

    wait_until(lambda: callers() == {"client:rest-app-7"}, 10, "the accepted line with the caller")
    preflight = rest.options("/voxbatch.tts.v1.TtsService/Synthesize", headers={
        "origin": "https://app.example", "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-voxbatch-client"})
    assert "x-voxbatch-client" in preflight.headers["access-control-allow-headers"]


# -- scale-out: balancing, health checks, retries -------------------------------------------------------


def served_by(replica: Replica) -> float:
    return replica.metrics().get('voxbatch_requests_total{code="OK",rpc="Synthesize"}', 0.0)


def synthesize_many(envoy: Envoy, count: int, workers: int, on_done=None) -> list[httpx.Response]:
    local = threading.local()

    def one(i: int) -> httpx.Response:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=envoy.url, timeout=60)
        response = local.client.post("/v1/synthesize", json={"text": f"Load test {i}.", "requestId": f"load-{i}"})
        if on_done is not None:
            on_done()
        return response

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, range(count)))


def test_both_replicas_serve_under_load(cluster):
    envoy, replicas = cluster
    before = [served_by(r) for r in replicas]
    responses = synthesize_many(envoy, count=16, workers=4)
    assert [r.status_code for r in responses] == [200] * 16
    gained = [served_by(r) - b for r, b in zip(replicas, before)]
    assert sum(gained) == 16 and min(gained) >= 3, gained


def test_stopping_a_replica_during_load_loses_no_request(cluster):
    """Last in this module: replica B is stopped (SIGTERM, as Kubernetes or compose would) while
    requests flow. Its in-flight work finishes, calls it refuses while draining and connections it
    no longer accepts are retried on replica A, and health checks then take it out."""
    envoy, (replica_a, replica_b) = cluster
    total = 30
    done = threading.Semaphore(0)
    finished: list[int] = []  # one entry per finished request
    signalled_after: list[int] = []
    stopper_result: list[int | None] = []

    def finish() -> None:
        finished.append(1)
        done.release()

    def stop_b_after_some_requests() -> None:
        for _ in range(6):
            done.acquire(timeout=60)
        signalled_after.append(len(finished))
        stopper_result.append(replica_b.stop(grace=30))

    stopper = threading.Thread(target=stop_b_after_some_requests)
    stopper.start()
    responses = synthesize_many(envoy, count=total, workers=4, on_done=finish)
    stopper.join(60)
    assert signalled_after and signalled_after[0] < total  # B was stopped while requests were still coming
    failures = [(i, r.status_code, r.text[:200]) for i, r in enumerate(responses) if r.status_code != 200]
    assert not failures, f"{len(failures)} requests failed: {failures[:5]}\n{envoy.log()[-2000:]}"
    for response in responses:
        samples, _ = decode(base64.b64decode(response.json()["audio"]))
        assert len(samples) > RATE // 2
    assert stopper_result == [0], replica_b.log()[-2000:]  # B drained and exited cleanly
    assert "shutting down" in replica_b.log()
    # Afterwards everything goes to A, and Envoy's health checks take B out.
    assert synthesize_many(envoy, count=4, workers=2)[-1].status_code == 200
    wait_until(lambda: envoy.healthy_hosts() == 1, 30, "Envoy to mark the stopped replica unhealthy")
