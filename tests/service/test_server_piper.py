"""The real server on the embedded Piper voice, driven through the Python SDK over loopback."""

from __future__ import annotations

import concurrent.futures
import io

import grpc
import numpy as np
import pytest
import soundfile as sf
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

import voxbatch
from tests.support.server import ServerThread
from voxbatch import Client, Encoding


def test_synthesize_returns_wav_with_its_figures(piper_server):
    with Client(piper_server.target) as client:
        audio = client.synthesize("Hello there, this is a test.", request_id="my-id-1")
    samples, rate = sf.read(io.BytesIO(audio.data))
    assert rate == audio.sample_rate == 22050
    assert audio.duration_seconds == pytest.approx(len(samples) / rate, abs=0.01)
    assert 0.8 < audio.duration_seconds < 5
    assert np.abs(samples).max() > 0.1
    assert audio.request_id == "my-id-1"
    assert audio.timings.batch_size >= 1 and audio.timings.compute_seconds > 0


def test_server_resamples_to_the_requested_rate(piper_server):
    with Client(piper_server.target) as client:
        audio = client.synthesize("Resampled speech.", sample_rate=44100, temperature=0.0)
    samples, rate = sf.read(io.BytesIO(audio.data))
    assert rate == 44100
    assert len(samples) == pytest.approx(audio.duration_seconds * 44100, rel=0.01)


@pytest.mark.parametrize("encoding", [Encoding.FLAC, Encoding.OGG_OPUS, Encoding.MP3, Encoding.PCM_S16LE])
def test_every_encoding_comes_back_decodable(piper_server, encoding):
    with Client(piper_server.target) as client:
        audio = client.synthesize("Format check.", encoding=encoding)
    assert audio.encoding is encoding
    samples = audio.to_numpy()
    assert len(samples) == pytest.approx(audio.duration_seconds * audio.sample_rate, rel=0.1)
    assert np.abs(samples).max() > 0.05


def _eight_concurrent_sizes(engine) -> tuple[list[int], int]:
    texts = [f"Client number {i} is asking for speech right now." for i in range(8)]
    with ServerThread(engine, cache_mb=0) as server, Client(server.target) as client:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda t: client.synthesize(t), texts))
        limit = client.server_info().batching.max_batch_size
    assert all(r.duration_seconds > 1 for r in results)
    return [r.timings.batch_size for r in results], limit


def test_concurrent_clients_share_padded_batches():
    from voxbatch_server.engines.piper_engine import PiperEngine

    engine = PiperEngine(batch_mode="padded")
    try:
        sizes, limit = _eight_concurrent_sizes(engine)
    finally:
        engine.close()
    assert max(sizes) > 1, sizes
    assert limit == 8


def test_rows_in_turn_run_one_item_per_batch_so_callers_interleave(piper_engine):
    # Computing rows in turn, a batch costs the sum of its items: batches of one lose nothing and
    # let the fair-share queue choose the next caller after every item.
    assert piper_engine.batch_mode == "rows"
    sizes, limit = _eight_concurrent_sizes(piper_engine)
    assert sizes == [1] * 8
    assert limit == 1


TEXT = "The first sentence is short. The second one is a little longer than the first! Is the third a question?"


@pytest.mark.parametrize("encoding", [Encoding.WAV, Encoding.OGG_OPUS, Encoding.MP3, Encoding.PCM_S16LE])
def test_stream_returns_ordered_chunks_that_join_into_one_file(piper_server, encoding):
    with Client(piper_server.target) as client:
        chunks = list(client.stream(TEXT, encoding=encoding, request_id="stream-1"))
    assert [c.sequence for c in chunks] == list(range(len(chunks)))
    assert [c.sentence_index for c in chunks] == sorted(c.sentence_index for c in chunks)
    assert chunks[-1].sentence_index == chunks[-1].sentence_count - 1 == 2
    assert [c.final for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert {c.request_id for c in chunks} == {"stream-1"}
    # A stream's work items ramp up: the first sentence alone, then up to 50 and 100 characters.
    assert [TEXT[c.text_start : c.text_end] for c in chunks] == [
        "The first sentence is short.",
        "The second one is a little longer than the first!",
        "Is the third a question?",
    ]
    offsets = [c.audio_offset_seconds for c in chunks]
    assert offsets == sorted(offsets) and offsets[0] == 0
    # The listener's playback as the server measured it: a late chunk counts as a stall (and its
    # wait), and the slack at the last chunk holds at least that chunk's audio, at most all of it.
    last = chunks[-1].timings
    assert (last.stalls == 0) == (last.stalled_seconds == 0)
    assert chunks[-1].duration_seconds - 1e-3 <= last.final_slack_seconds
    assert last.final_slack_seconds <= chunks[-1].audio_offset_seconds + chunks[-1].duration_seconds + 1e-3
    whole = voxbatch.join_chunks(chunks)
    samples = whole.to_numpy()
    assert len(samples) / whole.sample_rate == pytest.approx(whole.duration_seconds, abs=0.15)
    assert np.abs(samples).max() > 0.05


def test_repeated_request_is_served_from_the_cache(piper_server):
    with Client(piper_server.target) as client:
        first = client.synthesize("Cache me if you can.", temperature=0.0)
        second = client.synthesize("Cache me if you can.", temperature=0.0)
    assert not first.timings.cache_hit and second.timings.cache_hit
    assert second.data == first.data


def test_voices_and_server_info_describe_the_engine(piper_server):
    with Client(piper_server.target) as client:
        client.synthesize("Something to show in the figures.")
        voices = client.voices()
        info = client.server_info()
    assert voices.default_voice == "joe" and [v.name for v in voices.voices] == ["joe"]
    assert (info.engine, info.model, info.native_sample_rate_hz) == ("piper", "en_US-joe-medium", 22050)
    assert {p.name for p in info.parameters} == {"speaking_rate", "temperature"}
    assert info.batching.window_ms == 50 and info.batching.max_batch_size == 1  # rows in turn on a CPU
    assert info.max_text_chars == 5000 and info.queue_depth == 0
    assert info.recent_batches and all(b.size >= 1 and b.compute_seconds > 0 for b in info.recent_batches)
    assert info.recent_requests and info.recent_requests[-1].total_seconds > 0
    b = info.batching
    assert (b.scheduler, b.stream_margin_ms, b.window_mode, b.max_queued_per_caller) == ("streaming", 320, "adaptive", 64)
    # The scheduler's fitted cost of a step (for Piper, a batch) against rows, measured at least once.
    assert [c.rows for c in info.step_costs] == [1]  # up to the max batch size
    assert all(c.seconds > 0 for c in info.step_costs) and sum(c.samples for c in info.step_costs) >= 1
    assert info.recent_steps and all(s.rows >= 1 and s.seconds > 0 for s in info.recent_steps)


def test_health_and_reflection_are_served(piper_server):
    with grpc.insecure_channel(piper_server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "voxbatch.tts.v1.TtsService"):
            status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "voxbatch.tts.v1.TtsService" in services and "grpc.health.v1.Health" in services


def test_requests_with_random_noise_are_never_served_from_the_cache(piper_server):
    with Client(piper_server.target) as client:
        first = client.synthesize("Say it fresh each time.")
        second = client.synthesize("Say it fresh each time.")
        explicit = client.synthesize("Say it fresh each time.", temperature=1.0)
    assert not (first.timings.cache_hit or second.timings.cache_hit or explicit.timings.cache_hit)
