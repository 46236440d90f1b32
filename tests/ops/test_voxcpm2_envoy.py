"""`voxbatch serve --engine voxcpm --model-dir <a VoxCPM2 folder>` behind the real Envoy: REST and
OpenAI's speech route carry instructions and isolated references through to 48 kHz audio.

One replica on the tiny random VoxCPM2 (written by the test) and one Envoy, started once."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
import soundfile as sf

from .support import Envoy, Replica, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def rest(tmp_path_factory):
    from voxbatch_server.engines.voxcpm.random_checkpoint import TINY_V2, write_checkpoint

    logs = tmp_path_factory.mktemp("voxcpm2-envoy")
    model = write_checkpoint(logs / "voxcpm2-tiny", TINY_V2)
    replica = Replica("voxcpm2", logs, engine="voxcpm", model_dir=str(model), device="cpu", cache_mb="0")
    envoy = None
    try:
        replica.start()
        wait_until(replica.ready, 120, "the VoxCPM2 replica to serve")
        envoy = Envoy([replica.port], logs).start()
        wait_until(lambda: envoy.healthy_hosts() == 1, 30, "Envoy's health check to pass")
        with httpx.Client(base_url=envoy.url, timeout=120) as client:
            yield client
    finally:
        if envoy is not None:
            envoy.stop()
        replica.stop()


def clip_wav() -> bytes:
    t = np.arange(16000) / 16000
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, format="WAV")
    return buffer.getvalue()


def test_server_info_says_the_engine_follows_instructions(rest):
    info = rest.get("/v1/server-info").json()
    assert info["nativeSampleRateHz"] == 48000
    assert info["supportsInstructions"] is True and info["supportsIsolatedReference"] is True


def test_rest_voice_design_and_cloning_from_a_clip_alone(rest):
    body = {
        "text": "Hi there.",
        "instructions": "A warm, slow, elderly voice",
        "reference": {"audio": base64.b64encode(clip_wav()).decode()},  # no transcript: isolated cloning
        "parameters": {"seed": 3, "inferenceSteps": 2},
    }
    response = rest.post("/v1/synthesize", json=body)
    assert response.status_code == 200, response.text
    samples, rate = sf.read(io.BytesIO(base64.b64decode(response.json()["audio"])))
    assert rate == 48000 and len(samples) > 48000 // 2


def test_openai_speech_takes_instructions(rest):
    request = {"model": "gpt-4o-mini-tts", "input": "Hi.", "voice": "alloy", "response_format": "wav",
               "instructions": "cheerful and quick"}
    response = rest.post("/v1/audio/speech", json=request)
    assert response.status_code == 200, response.text
    samples, rate = sf.read(io.BytesIO(response.content))
    assert rate == 48000 and len(samples) > 0
