"""Errors, overload, deadlines, cancellation, failures and shutdown on a real server, driven
through the SDK, with a controllable engine so each situation can be produced on purpose."""

from __future__ import annotations

import concurrent.futures
import io
import threading
import time

import grpc
import numpy as np
import pytest
import soundfile as sf

from tests.support.engines import ToneEngine
from tests.support.net import wait_until
from tests.support.server import ServerThread
from voxbatch import Client, Encoding, Reference
from voxbatch.errors import (
    DeadlineExceededError,
    InvalidRequestError,
    OverloadedError,
    ServerError,
    UnavailableError,
)
from voxbatch.tts.v1 import tts_pb2 as pb
from voxbatch.tts.v1 import tts_pb2_grpc


def wav(seconds=1.0, rate=16000, channels=1):
    x = 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * rate)) / rate)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([x] * channels, axis=1), rate, format="WAV")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tone_server():
    with ServerThread(ToneEngine(cloning=True), max_text_chars=200, max_reference_seconds=5) as server:
        yield server


BAD_REQUESTS = [
    ("empty text", dict(text=""), "empty"),
    ("whitespace text", dict(text=" \n\t "), "empty"),
    ("text over the limit", dict(text="a" * 201), "limit is 200"),
    ("punctuation only", dict(text="?!..."), "no letters"),
    ("unknown voice", dict(text="hi", voice="nobody"), "unknown voice 'nobody'"),
    ("unknown encoding", dict(text="hi", encoding=99), "unknown encoding"),
    ("unknown priority", dict(text="hi", priority=7), "unknown priority"),
    ("negative rate", dict(text="hi", sample_rate_hz=-8000), "0 \\(native\\) or positive"),
    ("tiny rate", dict(text="hi", sample_rate_hz=100), "out of range"),
    ("huge rate", dict(text="hi", sample_rate_hz=10_000_000), "out of range"),
    ("opus at 44.1k", dict(text="hi", encoding=pb.AUDIO_ENCODING_OGG_OPUS, sample_rate_hz=44100), "Opus supports"),
    ("unsupported parameter", dict(text="hi", parameters=pb.SynthesisParameters(cfg_value=2.0)), "does not use cfg_value"),
    ("rate out of range", dict(text="hi", parameters=pb.SynthesisParameters(speaking_rate=9)), "between 0.5 and 2"),
    ("NaN parameter", dict(text="hi", parameters=pb.SynthesisParameters(speaking_rate=float("nan"))), "between"),
    ("engine refuses text", dict(text="an unspeakable word"), "cannot speak"),
    ("empty reference audio", dict(text="hi", reference=pb.ReferenceAudio(transcript="hello")), "empty"),
    ("non-audio reference", dict(text="hi", reference=pb.ReferenceAudio(audio=b"GIF89a" * 100, transcript="x")), "could not be decoded"),
    ("truncated reference", dict(text="hi", reference=pb.ReferenceAudio(audio=wav()[:40], transcript="x")), "reference"),
    ("reference without transcript", dict(text="hi", reference=pb.ReferenceAudio(audio=wav())), "transcript is empty"),
    ("reference too long", dict(text="hi", reference=pb.ReferenceAudio(audio=wav(seconds=8), transcript="x")), "limit is 5"),
    ("instructions to an engine without them", dict(text="hi", instructions="a warm voice"), "cannot follow instructions"),
    ("prompt to an engine without isolated cloning",
     dict(text="hi", reference=pb.ReferenceAudio(audio=wav()), prompt=pb.ReferenceAudio(audio=wav(), transcript="x")),
     "takes no prompt besides the reference"),
]


@pytest.mark.parametrize(("name", "fields", "message"), BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_bad_input_gets_invalid_argument_with_a_readable_message(tone_server, name, fields, message):
    with grpc.insecure_channel(tone_server.target) as channel:
        stub = tts_pb2_grpc.TtsServiceStub(channel)
        for method, request_type in ((stub.Synthesize, pb.SynthesizeRequest), (stub.StreamSynthesize, pb.StreamSynthesizeRequest)):
            with pytest.raises(grpc.RpcError) as error:
                response = method(request_type(**fields), timeout=10)
                list(response) if request_type is pb.StreamSynthesizeRequest else None
            assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
            assert __import__("re").search(message, error.value.details()), error.value.details()
    with Client(tone_server.target) as client:
        assert client.health() == "SERVING"
        assert client.synthesize("still fine").duration_seconds > 0


def test_flac_stream_is_refused_but_flac_unary_works(tone_server):
    with Client(tone_server.target) as client:
        with pytest.raises(InvalidRequestError, match="FLAC cannot be streamed"):
            list(client.stream("hello", encoding=Encoding.FLAC))
        assert client.synthesize("hello", encoding=Encoding.FLAC).to_numpy().size > 0


def test_oversized_message_is_refused_by_the_transport(tone_server):
    with Client(tone_server.target) as client, pytest.raises(OverloadedError):
        client.synthesize("hi", reference=Reference(b"\0" * (33 << 20), "x"))
    with Client(tone_server.target) as client:
        assert client.health() == "SERVING"


def test_valid_reference_clip_is_accepted_by_a_cloning_engine(tone_server):
    with Client(tone_server.target) as client:
        audio = client.synthesize("clone me", reference=Reference(wav(seconds=1.0, rate=44100, channels=2), "a tone"))
    assert audio.duration_seconds > 0


def test_full_queue_gives_resource_exhausted_at_once_and_recovers():
    gate = threading.Event()
    # A queue of 4 holds the longest text (200 characters: 4 work items at most).
    with ServerThread(ToneEngine(gate=gate), max_queue_size=4, max_text_chars=200) as server, Client(server.target) as client:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            blocker = pool.submit(client.synthesize, "blocker")
            wait_until(lambda: server.batcher.running_batches == 1)
            queued = [pool.submit(client.synthesize, f"queued {i}") for i in range(4)]
            wait_until(lambda: server.batcher.queue_depth == 4)
            started = time.monotonic()
            with pytest.raises(OverloadedError, match="queue is full"):
                client.synthesize("one too many")
            assert time.monotonic() - started < 2
            gate.set()
            assert all(f.result(10).duration_seconds > 0 for f in [blocker, *queued])
        assert client.synthesize("after the rush").duration_seconds > 0


def test_request_too_big_for_the_memory_budget_is_refused_with_the_reason():
    engine = ToneEngine(bytes_per_char=1 << 20)  # 1 MiB per character
    with ServerThread(engine, memory_budget_mb=64) as server, Client(server.target) as client:
        with pytest.raises(OverloadedError, match="over the batch memory budget of 64 MiB"):
            client.synthesize("x" * 100)
        assert client.synthesize("short").duration_seconds > 0


def test_deadline_passing_in_the_queue_gives_deadline_exceeded_and_never_runs():
    gate = threading.Event()
    engine = ToneEngine(gate=gate)
    with ServerThread(engine) as server, Client(server.target) as client:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            blocker = pool.submit(client.synthesize, "blocker")
            wait_until(lambda: server.batcher.running_batches == 1)
            with pytest.raises(DeadlineExceededError):
                client.synthesize("too late", timeout=0.3)
            wait_until(lambda: server.batcher.queue_depth == 0)
            gate.set()
            blocker.result(10)
    assert all("too late" not in batch for batch in engine.batches)


def test_abandoned_stream_withdraws_its_remaining_sentences():
    engine = ToneEngine(delay_s=0.3)
    text = " ".join(f"Sentence number {i}." for i in range(6))
    items = dict(work_item_chars=20, max_text_chars=2000)  # one sentence per work item
    with ServerThread(engine, max_batch_size=1, **items) as server, Client(server.target) as client:
        stream = client.stream(text)
        first = next(stream)
        assert first.sentence_index == 0
        stream.close()  # the client goes away after the first chunk
        wait_until(lambda: server.batcher.queue_depth == 0 and server.batcher.running_batches == 0)
    assert len(engine.batches) < 6


def test_a_failing_request_gets_internal_and_its_batch_neighbours_succeed():
    gate = threading.Event()
    engine = ToneEngine(gate=gate, fail_on="poison")
    with ServerThread(engine) as server, Client(server.target) as client:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            blocker = pool.submit(client.synthesize, "blocker")
            wait_until(lambda: server.batcher.running_batches == 1)
            futures = {t: pool.submit(client.synthesize, t) for t in ("good one", "poison pill", "good two")}
            wait_until(lambda: server.batcher.queue_depth == 3)
            gate.set()
            blocker.result(10)
            assert futures["good one"].result(10).duration_seconds > 0
            assert futures["good two"].result(10).duration_seconds > 0
            with pytest.raises(ServerError, match="boom"):
                futures["poison pill"].result(10)
        # The three arrived while the engine was blocked, so they shared one batch (in any order).
        assert sorted(["good one", "poison pill", "good two"]) in [sorted(b) for b in engine.batches]
        assert client.health() == "SERVING"


def test_graceful_shutdown_finishes_in_flight_work_and_refuses_new_calls():
    engine = ToneEngine(delay_s=0.5)
    server = ServerThread(engine).__enter__()
    client = Client(server.target)
    try:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            in_flight = pool.submit(client.synthesize, "finish me")
            wait_until(lambda: server.batcher.running_batches == 1)
            stopping = pool.submit(server.stop, 5)
            time.sleep(0.1)
            with pytest.raises(UnavailableError):
                client.synthesize("too late", timeout=5)
            assert in_flight.result(10).duration_seconds > 0
            stopping.result(10)
    finally:
        client.close()
        server.stop()


def test_an_explicit_default_parameter_hits_the_cache_entry_of_the_omitted_one(tone_server):
    with Client(tone_server.target) as client:
        omitted = client.synthesize("The same request twice.")
        explicit = client.synthesize("The same request twice.", speaking_rate=1.0)
    assert not omitted.timings.cache_hit and explicit.timings.cache_hit
    assert explicit.data == omitted.data


def test_a_seed_out_of_range_prints_its_bounds_as_integers():
    engine = ToneEngine()
    engine.info = type(engine.info)(**{**engine.info.__dict__, "parameters": (
        *engine.info.parameters, type(engine.info.parameters[0])("seed", 0, 2**32 - 1, 0, "seed"))})
    with ServerThread(engine) as server, Client(server.target) as client:
        with pytest.raises(InvalidRequestError, match="seed must be between 0 and 4294967295, not 4294967296"):
            client.synthesize("hi", seed=2**32)


def test_an_undecodable_reference_is_explained_without_python_internals(tone_server):
    with Client(tone_server.target) as client:
        with pytest.raises(InvalidRequestError) as raised:
            client.synthesize("hi", reference=Reference(b"this is not audio at all" * 20, "hello"))
    assert "could not be decoded as audio (Format not recognised" in raised.value.details
    assert "object at 0x" not in raised.value.details and "BytesIO" not in raised.value.details


def test_the_openai_routes_unknown_voice_message_lists_the_openai_names_too(tone_server):
    with grpc.insecure_channel(tone_server.target) as channel:
        stub = tts_pb2_grpc.TtsServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.CreateSpeech(pb.CreateSpeechRequest(model="tts-1", input="hi", voice="nobody"), timeout=10)
        assert stub.CreateSpeech(pb.CreateSpeechRequest(model="tts-1", input="hi", voice="alloy"), timeout=10).data
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = raised.value.details()
    assert "unknown voice 'nobody'" in details and "tone" in details and "alloy" in details and "shimmer" in details
