"""The server on the VoxCPM engine (tiny random model), driven through the SDK."""

from __future__ import annotations

import concurrent.futures
import io

import numpy as np
import pytest
import soundfile as sf

from tests.support.net import free_port, wait_until
from tests.support.server import ServerThread
from voxbatch import Client, Encoding, Reference, join_chunks
from voxbatch.errors import InvalidRequestError

from .conftest import prompt_audio


@pytest.fixture(scope="module")
def voxcpm_server(tiny_engine):
    with ServerThread(tiny_engine, cache_mb=0, metrics_port=free_port()) as server:
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
    assert {p.name for p in info.parameters} == {"cfg_value", "inference_steps", "temperature", "seed", "retry_badcase"}
    assert voices.default_voice == "default"
    assert info.decode_step == "eager"  # the tiny engine runs with --compile off


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


def test_unseeded_runaways_are_retried_and_counted_in_the_response_and_the_metrics(voxcpm_server):
    import httpx

    from tests.ops.support import parse_metrics

    def retries_counted() -> float:
        url = f"http://127.0.0.1:{voxcpm_server.running.metrics_port}/metrics"
        return parse_metrics(httpx.get(url, timeout=5).text).get("voxbatch_badcase_retries_total", 0.0)

    before = retries_counted()
    with Client(voxcpm_server.target) as client:
        unseeded = client.synthesize("Hi.", inference_steps=2)  # the tiny model never stops: every try runs away
        seeded = client.synthesize("Hi.", inference_steps=2, seed=1)
        off = client.synthesize("Hi.", inference_steps=2, retry_badcase=False)
    assert (unseeded.badcase_retries, seeded.badcase_retries, off.badcase_retries) == (2, 0, 0)
    assert unseeded.length_capped  # what still runs away after the retries is reported as before
    assert retries_counted() - before == 2


def test_bad_reference_audio_is_invalid_argument(voxcpm_server):
    with Client(voxcpm_server.target) as client:
        with pytest.raises(InvalidRequestError, match="could not be decoded"):
            client.synthesize("Hi there.", reference=Reference(b"RIFF....WAVEjunk" * 20, "words"))
        with pytest.raises(InvalidRequestError, match="does not use speaking_rate"):
            client.synthesize("Hi there.", speaking_rate=1.2)
        assert client.health() == "SERVING"


def test_voxcpm_1_5_refuses_what_only_voxcpm2_does(voxcpm_server):
    clip = wav_bytes(prompt_audio(), 44100)
    with Client(voxcpm_server.target) as client:
        info = client.server_info()
        assert not info.supports_instructions and not info.supports_isolated_reference
        with pytest.raises(InvalidRequestError, match="cannot follow instructions"):
            client.synthesize("Hi there.", instructions="a warm voice")
        with pytest.raises(InvalidRequestError, match="reference.transcript is empty"):
            client.synthesize("Hi there.", reference=Reference(clip))
        with pytest.raises(InvalidRequestError, match="takes no prompt"):
            client.synthesize("Hi there.", reference=Reference(clip), prompt=Reference(clip, "A tone."))


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


@pytest.fixture(scope="module")
def voxcpm2_server(tiny_v2_engine):
    with ServerThread(tiny_v2_engine, cache_mb=0) as server:
        yield server


def test_voxcpm2_serves_48khz_in_every_mode_batched_streamed_and_unary(voxcpm2_server):
    """Voice design, isolated cloning, continuation, both together (with style instructions), at
    once through one server so they share batches; streamed audio equals unary audio."""
    clip = wav_bytes(prompt_audio(), 44100)  # resampled to the encoder's 16 kHz
    modes = {
        "plain": {},
        "design": dict(instructions="A warm, slow, elderly voice"),
        "isolated": dict(reference=Reference(clip)),
        "continuation": dict(reference=Reference(clip, "A tone sweeps.")),
        "both": dict(reference=Reference(clip), prompt=Reference(clip, "A tone sweeps."), instructions="cheerful"),
    }
    with Client(voxcpm2_server.target) as client:
        info = client.server_info()
        assert (info.native_sample_rate_hz, info.supports_instructions, info.supports_isolated_reference) == (48000, True, True)
        with concurrent.futures.ThreadPoolExecutor(len(modes)) as pool:
            unary = dict(zip(modes, pool.map(
                lambda m: client.synthesize("Hi there.", seed=4, inference_steps=2, encoding=Encoding.PCM_S16LE, **m),
                modes.values(),
            )))
        streamed = join_chunks(list(client.stream("Hi there.", seed=4, inference_steps=2, encoding=Encoding.PCM_S16LE,
                                                  **modes["both"])))
    assert all(a.sample_rate == 48000 for a in unary.values())
    assert max(a.timings.batch_size for a in unary.values()) > 1
    samples = {m: a.to_numpy() for m, a in unary.items()}
    assert len({len(s) for s in samples.values()}) > 1  # instructions lengthen the text, so the cap
    for a in ("plain", "design", "isolated", "continuation", "both"):
        for b in ("plain", "design", "isolated", "continuation", "both"):
            if a < b and len(samples[a]) == len(samples[b]):
                assert not np.array_equal(samples[a], samples[b]), (a, b)  # each mode shapes the audio
    # Equal up to 16-bit rounding of float noise from batch company (the unary ran in a batch).
    assert np.abs(streamed.to_numpy() - samples["both"]).max() <= 2 / 32768


def test_voxcpm2_prompt_rules_are_invalid_argument(voxcpm2_server):
    clip = wav_bytes(prompt_audio(), 44100)
    with Client(voxcpm2_server.target) as client:
        with pytest.raises(InvalidRequestError, match="reference.transcript must be empty when a prompt is sent"):
            client.synthesize("Hi.", reference=Reference(clip, "words"), prompt=Reference(clip, "words"))
        with pytest.raises(InvalidRequestError, match="prompt.transcript is empty"):
            client.synthesize("Hi.", reference=Reference(clip), prompt=Reference(clip))
        with pytest.raises(InvalidRequestError, match="prompt needs a reference"):
            client.synthesize("Hi.", prompt=Reference(clip, "words"))


def test_cli_say_with_instructions_and_a_reference_without_its_words(voxcpm2_server, tmp_path):
    from voxbatch.cli import main

    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes(prompt_audio(), 44100))
    prompt = tmp_path / "prompt.wav"
    prompt.write_bytes(wav_bytes(prompt_audio()[: 44100], 44100))
    common = ["--server", voxcpm2_server.target, "--seed", "1", "--inference-steps", "2"]
    out = tmp_path / "designed.wav"
    assert main(["say", "Hi there.", "-o", str(out), "--instructions", "a warm, slow voice", "--reference", str(clip), *common]) == 0
    samples, rate = sf.read(out)
    assert rate == 48000 and len(samples) > 48000 // 2
    both = tmp_path / "both.wav"
    assert main(["say", "Hi there.", "-o", str(both), "--reference", str(clip), "--prompt", str(prompt),
                 "--prompt-text", "A tone sweeps.", *common]) == 0
    assert sf.info(both).samplerate == 48000
    assert main(["say", "Hi.", "-o", str(both), "--prompt", str(prompt), *common]) == 2  # needs its text and a reference
