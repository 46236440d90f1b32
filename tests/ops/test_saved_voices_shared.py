"""Saved voices shared by replicas through a real redis-server: in-process servers for the store's
semantics, then two `voxbatch serve` replicas on the tiny VoxCPM model behind the real Envoy,
driven over REST, where a voice saved through one replica is used by name on both."""

from __future__ import annotations

import base64
import concurrent.futures

import httpx
import pytest
import redis

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from tests.voices.helpers import clip
from voxbatch import Client, Reference
from voxbatch.errors import AlreadyExistsError, NotFoundError, UnavailableError
from voxbatch_server.voices.redis_store import INDEX_KEY, KEY_PREFIX

from .support import Envoy, Replica, wait_until

ANNA = Reference(clip(), "A tone sweeps up and down.")



def test_two_servers_share_voices_through_redis(redis_server):
    with ServerThread(ToneEngine(cloning=True), redis_url=redis_server.url) as a, \
            ServerThread(ToneEngine(cloning=True), redis_url=redis_server.url) as b, \
            Client(a.target) as client_a, Client(b.target) as client_b:
        assert client_a.server_info().voice_store == "redis"
        client_a.create_voice("shared-anna", ANNA, description="made on A")
        assert client_b.get_voice("shared-anna").voice.description == "made on A"
        assert client_b.synthesize("Spoken on B.", voice="shared-anna").duration_seconds > 0
        assert not client_b.synthesize("Spoken on B.", voice="shared-anna").timings.prompt_encoded

        # Both replicas race to create one name: exactly one wins.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(
                lambda client: _outcome(lambda: client.create_voice("raced", ANNA)), [client_a, client_b]
            ))
        assert sorted(outcomes) == ["AlreadyExistsError", "ok"]

        client_b.delete_voice("shared-anna")
        with pytest.raises(NotFoundError):
            client_a.get_voice("shared-anna")
        client_a.delete_voice("raced")
        store = redis.Redis(port=redis_server.port)
        assert store.smembers(INDEX_KEY) == set() and store.keys(KEY_PREFIX + "*") == []


def test_voice_calls_answer_unavailable_while_redis_is_away():
    from .support import free_port

    with ServerThread(ToneEngine(cloning=True), redis_url=f"redis://127.0.0.1:{free_port()}/0") as server, \
            Client(server.target) as client:
        with pytest.raises(UnavailableError, match="voice store"):
            client.create_voice("anna", ANNA)
        assert client.synthesize("Built-in voices still speak.").duration_seconds > 0


def _outcome(call) -> str:
    try:
        call()
        return "ok"
    except AlreadyExistsError as error:
        return type(error).__name__


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_voice_saved_through_envoy_is_used_by_name_on_both_replicas(redis_server, tmp_path):
    from voxbatch_server.engines.voxcpm.random_checkpoint import write_checkpoint

    model = write_checkpoint(tmp_path / "tiny")
    settings = dict(engine="voxcpm", model_dir=str(model), device="cpu", redis_url=redis_server.url, cache_mb="0")
    replicas = [Replica(name, tmp_path, **settings) for name in ("replica-a", "replica-b")]
    envoy = None
    try:
        for replica in replicas:
            replica.extra_env = {"OMP_NUM_THREADS": "1"}
            replica.start()
        for replica in replicas:
            wait_until(replica.ready, 120, f"{replica.name} to serve")
        envoy = Envoy([r.port for r in replicas], tmp_path).start()
        wait_until(lambda: envoy.healthy_hosts() == 2, 30, "Envoy's health checks to pass on both replicas")
        with httpx.Client(base_url=envoy.url, timeout=120) as rest:
            body = {"name": "rest-anna", "description": "saved over REST", "languages": ["en"],
                    "reference": {"audio": base64.b64encode(ANNA.audio).decode(), "transcript": ANNA.transcript}}
            created = rest.post("/v1/voices", json=body)
            assert created.status_code == 200, created.text
            assert created.json()["voice"]["kind"] == "VOICE_KIND_SAVED"
            assert rest.post("/v1/voices", json=body).status_code == 409  # ALREADY_EXISTS
            listed = rest.get("/v1/voices").json()
            assert [v["name"] for v in listed["voices"]] == ["default", "rest-anna"]
            assert rest.get("/v1/voices/rest-anna").json()["voice"]["transcript"] == ANNA.transcript
            said = rest.post("/v1/synthesize", json={"text": "Hi.", "voice": "rest-anna",
                                                     "parameters": {"inferenceSteps": 1, "seed": 1}})
            assert said.status_code == 200, said.text
            assert said.json()["timings"].get("promptEncoded", False) is False
            speech = rest.post("/v1/audio/speech", json={"model": "tts-1", "input": "Hi.", "voice": "rest-anna",
                                                         "response_format": "wav"})
            assert speech.status_code == 200 and speech.content[:4] == b"RIFF"
            for replica in replicas:  # each replica serves the voice by name, encoding nothing
                with Client(replica.target) as client:
                    audio = client.synthesize("Ok.", voice="rest-anna", inference_steps=1, seed=2)
                    assert audio.duration_seconds > 0 and not audio.timings.prompt_encoded
            assert rest.delete("/v1/voices/rest-anna").status_code == 200
            assert rest.get("/v1/voices/rest-anna").status_code == 404
            assert rest.delete("/v1/voices/rest-anna").status_code == 404
    finally:
        if envoy is not None:
            envoy.stop()
        for replica in replicas:
            replica.stop()
