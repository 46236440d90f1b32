"""Property-based fuzzing of every request field against running servers.

Whatever the client puts in a request, the server answers OK, INVALID_ARGUMENT or
RESOURCE_EXHAUSTED: never UNKNOWN or INTERNAL (those mean the server broke), never a crash or a
hang, and its memory does not grow over the run. Hypothesis draws each field from its whole range
(any int32 enum value, any float32 including NaN and infinities, any uint64 seed, any Unicode
text, random bytes or real WAV files of any rate as references), mixed with the values that
matter (known voices, supported rates, ranges' edges).

Bounded: a fixed number of examples per server, no deadline per example (the machine is shared),
every call with a timeout.
"""

from __future__ import annotations

import io
from collections import Counter

import grpc
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch.tts.v1 import tts_pb2 as pb

from .helpers import CLIENT_CODES, Caller, rss_mib, wait_for

INT32 = st.integers(-(2**31), 2**31 - 1)
FLOAT32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
RATES = (0, 8000, 11025, 16000, 22050, 24000, 44100, 48000, 96000, 192000)


def optional(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def wav_files(draw) -> bytes:
    """Real WAV files with any rate, length, channel count and sample format, sometimes cut short."""
    rate = draw(st.one_of(st.sampled_from([8000, 16000, 44100, 48000]), st.integers(1, 200_000)))
    frames = draw(st.integers(0, 40_000))
    channels = draw(st.integers(1, 3))
    subtype = draw(st.sampled_from(["PCM_16", "PCM_U8", "FLOAT", "PCM_24"]))
    kind = draw(st.sampled_from(["tone", "silence", "noise", "nan"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "tone":
        x = 0.3 * np.sin(np.arange(frames) * 0.05)
    elif kind == "noise":
        x = rng.uniform(-1, 1, frames)
    elif kind == "nan":
        x = np.where(rng.random(frames) < 0.01, np.nan, 0.1)
    else:
        x = np.zeros(frames)
    if kind == "nan" and subtype != "FLOAT":
        x = np.nan_to_num(x)
    buffer = io.BytesIO()
    sf.write(buffer, np.stack([x] * channels, axis=1), rate, format="WAV", subtype=subtype)
    data = buffer.getvalue()
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    return data if cut is None else data[:cut]


def references(cloning: bool):
    audio = st.one_of(st.binary(max_size=2000), wav_files())
    clip = st.builds(pb.ReferenceAudio, audio=audio, transcript=st.text(max_size=60))
    return optional(clip) if cloning else st.one_of(st.none(), st.none(), st.none(), clip)


def texts(max_size: int):
    return st.one_of(
        st.text(max_size=max_size),
        st.text(st.characters(codec="utf-8"), min_size=1, max_size=max_size),
        st.sampled_from(["", " ", "Hello there.", "Two sentences. Here they are!", "?!...", "a." * 120, "😀"]),
    )


def parameters():
    return st.builds(
        _parameters,
        cfg_value=optional(st.one_of(FLOAT32, st.floats(0, 10, width=32))),
        inference_steps=optional(st.one_of(INT32, st.integers(0, 3))),
        temperature=optional(st.one_of(FLOAT32, st.floats(0, 2, width=32))),
        seed=optional(st.integers(0, 2**64 - 1)),
        speaking_rate=optional(st.one_of(FLOAT32, st.floats(0.25, 4, width=32))),
    )


def _parameters(**values) -> pb.SynthesisParameters:
    return pb.SynthesisParameters(**{k: v for k, v in values.items() if v is not None})


def valid_texts():
    return st.from_regex(r"[A-Za-z][A-Za-z0-9 ,'!?]{0,40}[.!?]( [A-Z][a-z ]{1,30}[.])?", fullmatch=True)


def valid_wav() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, 0.3 * np.sin(np.arange(16000) * 0.05), 16000, format="WAV")
    return buffer.getvalue()


VALID_WAV = valid_wav()


@st.composite
def requests(draw, voices: list[str], cloning: bool, params: dict, max_text: int) -> dict:
    """A valid request with up to three fields replaced by anything their type allows."""
    valid = {
        "text": valid_texts(),
        "voice": st.sampled_from(["", *voices]),
        "reference": st.just(pb.ReferenceAudio(audio=VALID_WAV, transcript="a tone") if cloning else None),
        "encoding": st.sampled_from([0, 1, 3, 4, 5]),
        "sample_rate_hz": st.sampled_from([0, 16000, 24000, 48000]),
        "parameters": st.builds(_parameters, **{name: optional(strategy) for name, strategy in params.items()}),
        "priority": st.integers(0, 2),
        "request_id": st.text(max_size=40),
    }
    hostile = {
        "text": texts(max_text),
        "voice": st.one_of(st.sampled_from(voices), st.text(max_size=40)),
        "reference": references(cloning),
        "encoding": st.one_of(st.integers(0, 5), INT32),
        "sample_rate_hz": st.one_of(st.sampled_from(RATES), st.integers(7990, 192_010), INT32),
        "parameters": parameters(),
        "priority": INT32,
        "request_id": st.text(max_size=2000),
    }
    replaced = draw(st.sets(st.sampled_from(sorted(valid)), max_size=3))
    return {name: draw(hostile[name] if name in replaced else valid[name]) for name in valid}


@st.composite
def speech_requests(draw, max_text: int) -> dict:
    """A valid OpenAI speech request with up to three fields replaced by anything."""
    valid = {
        "model": st.sampled_from(["", "tts-1", "tts-1-hd"]),
        "input": valid_texts(),
        "voice": st.sampled_from(["", "alloy", "joe", "nova"]),
        "response_format": st.sampled_from(["", "mp3", "opus", "flac", "wav", "pcm", "PCM"]),
        "speed": optional(st.floats(0.25, 4.0)),
        "stream_format": st.sampled_from(["", "audio"]),
    }
    hostile = {
        "model": st.text(max_size=200),
        "input": texts(max_text),
        "voice": st.text(max_size=30),
        "response_format": st.one_of(st.sampled_from(["aac", "ogg", "mp4"]), st.text(max_size=10)),
        "speed": st.floats(allow_nan=True, allow_infinity=True),
        "stream_format": st.one_of(st.just("sse"), st.text(max_size=10)),
    }
    replaced = draw(st.sets(st.sampled_from(sorted(valid)), max_size=3))
    return {name: draw(hostile[name] if name in replaced else valid[name]) for name in valid}


def warm_up(caller: Caller, text: str, rates=(0, 16000, 48000), **fields) -> None:
    """One call per encoding, rate and RPC, so that encoders, arenas and buffers reach their working
    size before memory is measured."""
    for encoding in (0, 1, 3, 4, 5):
        for rate in rates:
            for call in (caller.unary, caller.stream):
                call(text=text, encoding=encoding, sample_rate_hz=rate, **fields)


def check(caller: Caller, fields: dict, stream: bool, seen: Counter) -> None:
    fields = {k: v for k, v in fields.items() if v is not None}
    code, details, responses = (caller.stream if stream else caller.unary)(timeout=120, **fields)
    seen[code.name] += 1
    assert code in CLIENT_CODES, f"{code.name}: {details}"
    if code == grpc.StatusCode.OK:
        assert responses and sum(len(r.audio) for r in responses) > 0
        if stream:
            assert responses[-1].final


def check_speech(caller: Caller, fields: dict, seen: Counter) -> None:
    fields = {k: v for k, v in fields.items() if v is not None}
    code, details, responses = caller.speech(timeout=120, **fields)
    seen[code.name] += 1
    assert code in CLIENT_CODES, f"{code.name}: {details}"
    if code == grpc.StatusCode.OK:
        assert responses[0].data and responses[0].content_type.startswith("audio/")


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, database=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(scope="module")
def tone_server():
    with ServerThread(ToneEngine(cloning=True), max_text_chars=400, metrics_port=0, cache_mb=8) as server:
        yield server


def test_fuzzing_every_field_on_a_cloning_engine(tone_server):
    with Caller(tone_server.target) as caller:
        seen: Counter = Counter()
        warm_up(caller, "Warm up, then measure.")
        before = rss_mib()

        @fuzz_settings(120)
        @given(fields=requests(["tone", "low"], True, {"speaking_rate": st.floats(0.5, 2, width=32)}, 500), stream=st.booleans())
        def fuzz(fields, stream):
            check(caller, fields, stream, seen)

        fuzz()
        print(dict(seen))
        assert seen["OK"] >= 10 and seen["INVALID_ARGUMENT"] >= 10  # both paths were exercised
        assert caller.unary(text="still fine")[0] == grpc.StatusCode.OK
        # A caller has its answer a moment before the worker hands its batch back: wait for that.
        wait_for(lambda: tone_server.batcher.queue_depth == 0 and tone_server.batcher.running_batches == 0)
        # Generous: the result cache (8 MiB here) and the resampling filters (at most 64 MiB) may
        # fill; a leak of 2 MiB per call would pass 200.
        assert rss_mib() - before < 200


def test_fuzzing_every_field_on_the_embedded_voice(piper_server):
    with Caller(piper_server.target) as caller:
        seen: Counter = Counter()
        spoken: Counter = Counter()
        warm_up(caller, "Warm up, then measure.")
        before = rss_mib()

        @fuzz_settings(40)
        @given(fields=requests(["joe"], False, {"speaking_rate": st.floats(0.5, 2, width=32), "temperature": st.floats(0, 2, width=32)}, 60),
               stream=st.booleans())
        def fuzz(fields, stream):
            check(caller, fields, stream, seen)

        @fuzz_settings(25)
        @given(fields=speech_requests(max_text=60))
        def fuzz_speech(fields):
            check_speech(caller, fields, spoken)

        fuzz()
        fuzz_speech()
        print(dict(seen), dict(spoken))
        assert seen["OK"] >= 5 and spoken["OK"] >= 3
        assert caller.unary(text="Still fine.")[0] == grpc.StatusCode.OK
        assert piper_server.batcher.queue_depth == 0
        # Generous: the result cache (64 MiB on this server), the resampling filters (at most
        # 64 MiB) and onnxruntime's arena (it grows to the longest input) fill up; measured over
        # four passes of 40 examples: +80, +57, +5, +5 MiB. A leak of 5 MiB per call would pass 300.
        assert rss_mib() - before < 300


@pytest.fixture(scope="module")
def voxcpm_server(tmp_path_factory):
    """VoxCPM with the tiny random model (short texts keep each generation well under a second)."""
    import torch

    from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine
    from voxbatch_server.engines.voxcpm.random_checkpoint import write_checkpoint

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    engine = VoxCPMEngine(write_checkpoint(tmp_path_factory.mktemp("voxcpm-fuzz")), device="cpu")
    try:
        with ServerThread(engine, max_text_chars=24, max_reference_seconds=3, metrics_port=0, cache_mb=0) as server:
            yield server
    finally:
        torch.set_num_threads(threads)


def test_fuzzing_every_field_on_voxcpm(voxcpm_server):
    """The engine that uses every parameter and clones: references of any rate are resampled."""
    params = {
        "cfg_value": st.floats(0, 10, width=32),
        "inference_steps": st.integers(1, 3),
        "temperature": st.floats(0, 2, width=32),
        "seed": st.integers(0, 2**32 - 1),
    }
    with Caller(voxcpm_server.target) as caller:
        seen: Counter = Counter()
        steps = pb.SynthesisParameters(inference_steps=1)
        warm_up(caller, "Hello there.", rates=(0,), parameters=steps)
        warm_up(caller, "The quick dog.", rates=(0,), parameters=steps,
                reference=pb.ReferenceAudio(audio=VALID_WAV, transcript="a tone"))
        before = rss_mib()

        @fuzz_settings(30)
        @given(fields=requests(["default"], True, params, 30), stream=st.booleans())
        def fuzz(fields, stream):
            if not fields["parameters"].HasField("inference_steps"):
                fields["parameters"].inference_steps = 1  # the default (10) would only make it slower
            if not fields["parameters"].HasField("retry_badcase"):
                fields["parameters"].retry_badcase = False  # the random model never stops: retries only triple the work
            check(caller, fields, stream, seen)

        fuzz()
        assert seen["OK"] >= 5 and seen["INVALID_ARGUMENT"] >= 5, dict(seen)
        assert voxcpm_server.batcher.queue_depth == 0
        # Generous: longer texts and references grow torch's and the allocator's working set at
        # first. Measured over six passes of 30 examples (after malloc_trim): +160, +65, +92, +27,
        # +35, -7 MiB, while plain requests stay flat; a leak of 10 MiB per call would pass 300.
        assert rss_mib() - before < 300
