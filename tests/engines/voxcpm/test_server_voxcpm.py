"""The server on the VoxCPM engine (tiny random model), driven through the SDK."""

from __future__ import annotations

import concurrent.futures
import io

import numpy as np
import pytest
import soundfile as sf

from tests.support.net import wait_until
from tests.support.server import ServerThread
from voxbatch import Client, Encoding, Reference, join_chunks
from voxbatch.errors import InvalidRequestError

from .conftest import prompt_audio


@pytest.fixture(scope="module")
def voxcpm_server(tiny_engine):
    with ServerThread(tiny_engine, cache_mb=0) as server:
        yield server


def wav_bytes(samples, rate, channels=1):
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([samples] * channels, axis=1), rate, format="WAV")
    return buffer.getvalue()


def test_server_info_describes_the_voxcpm_engine(voxcpm_server):
    with Client(voxcpm_server.target) as client:
        info = client.server_info()
        voices = client.voices()
    assert (info.engine, info.native_sample_rate_hz, info.supports_cloning) == ("voxcpm", 44100, True)
    assert {p.name for p in info.parameters} == {"cfg_value", "inference_steps", "temperature", "seed"}
    assert voices.default_voice == "default"


def test_concurrent_requests_run_in_shared_batches(voxcpm_server):
    texts = ["Hi.", "Ok.", "Hi there.", "Fine."]
    with Client(voxcpm_server.target) as client, concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda t: client.synthesize(t, seed=1, inference_steps=2), texts))
    assert all(r.sample_rate == 44100 and r.duration_seconds > 0.5 for r in results)
    assert max(r.timings.batch_size for r in results) > 1
    assert all(r.length_capped for r in results)  # the tiny model never stops by itself


def test_same_seed_gives_the_same_audio_alone_or_in_a_batch(voxcpm_server):
    with Client(voxcpm_server.target) as client:
        alone = client.synthesize("Hi there.", seed=5, inference_steps=2, encoding=Encoding.PCM_S16LE)
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            crowd = list(pool.map(
                lambda t: client.synthesize(t, seed=5, inference_steps=2, encoding=Encoding.PCM_S16LE),
                ["Hi there.", "Numbers like 42 are read aloud, too!", "Ok."],
            ))
    assert crowd[0].data == alone.data or np.abs(crowd[0].to_numpy() - alone.to_numpy()).max() <= 2 / 32768


def test_cloning_from_a_reference_wav(voxcpm_server):
    clip = wav_bytes(prompt_audio()[::2], 22050, channels=2)  # another rate, stereo
    with Client(voxcpm_server.target) as client:
        audio = client.synthesize("Hi there.", reference=Reference(clip, "A tone sweeps."), seed=3, inference_steps=2)
    samples, rate = sf.read(io.BytesIO(audio.data))
    assert rate == 44100 and len(samples) > 44100 // 2


def test_bad_reference_audio_is_invalid_argument(voxcpm_server):
    with Client(voxcpm_server.target) as client:
        with pytest.raises(InvalidRequestError, match="could not be decoded"):
            client.synthesize("Hi there.", reference=Reference(b"RIFF....WAVEjunk" * 20, "words"))
        with pytest.raises(InvalidRequestError, match="does not use speaking_rate"):
            client.synthesize("Hi there.", speaking_rate=1.2)
        assert client.health() == "SERVING"


def test_streaming_yields_160_ms_pieces_as_generation_runs(voxcpm_server):
    with Client(voxcpm_server.target) as client:
        chunks = list(client.stream("Hi. Ok.", seed=2, inference_steps=2, encoding=Encoding.PCM_S16LE))
    assert [c.sequence for c in chunks] == list(range(len(chunks)))
    assert {c.sentence_index for c in chunks} == {0, 1}
    steps = [c for c in chunks if c.duration_seconds > 0]
    assert len(steps) > 4 and all(c.duration_seconds == pytest.approx(0.16) for c in steps)
    assert chunks[-1].final
    joined = join_chunks(chunks)
    assert len(joined.to_numpy()) == pytest.approx(sum(c.duration_seconds for c in chunks) * 44100, abs=2)


def test_a_request_arriving_mid_generation_joins_the_running_batch(tiny_engine):
    long_text = "Batching requests makes speech faster when many people speak at once."
    with ServerThread(tiny_engine, cache_mb=0) as server, Client(server.target) as client:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = pool.submit(client.synthesize, long_text, seed=1, inference_steps=2)
            wait_until(lambda: server.batcher.running_batches == 1, timeout=30)
            second = client.synthesize("Hi.", seed=2, inference_steps=2)
            first = first.result(120)
        assert server.batcher.stats.batches == 1  # one batch served both: the second joined it
        assert second.timings.batch_size == first.timings.batch_size == 2
