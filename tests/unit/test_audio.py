"""Encoding to every contract format, streaming encoders, resampling and reference decoding."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from voxbatch.audio import Audio
from voxbatch.options import Encoding
from voxbatch_server.audio.encoding import STREAMABLE, StreamEncoder, encode, output_rate
from voxbatch_server.audio.reference import decode_reference
from voxbatch_server.audio.resample import resample
from voxbatch_server.domain import AudioEncoding, ReferenceClip
from voxbatch_server.errors import InvalidInput


def sine(freq=440.0, rate=22050, seconds=1.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def decode(data: bytes, encoding: AudioEncoding, rate: int) -> np.ndarray:
    return Audio(data, Encoding[encoding.name], rate, 0.0).to_numpy()


def dominant_frequency(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.mark.parametrize("encoding", list(AudioEncoding))
def test_every_encoding_decodes_to_the_same_sound(encoding):
    rate = output_rate(encoding, 0, 22050)
    x = resample(sine(), 22050, rate)
    y = decode(encode(x, rate, encoding), encoding, rate)
    assert abs(len(y) - len(x)) < 0.1 * rate  # codecs may pad a little
    assert dominant_frequency(y[: len(x)], rate) == pytest.approx(440, abs=5)


@pytest.mark.parametrize("encoding", STREAMABLE)
def test_streamed_pieces_join_into_one_decodable_file(encoding):
    rate = output_rate(encoding, 0, 22050)
    x = resample(sine(seconds=3.0), 22050, rate)
    encoder = StreamEncoder(encoding, rate)
    pieces = [encoder.write(x[i : i + rate]) for i in range(0, len(x), rate)] + [encoder.finish()]
    y = decode(b"".join(pieces), encoding, rate)
    assert abs(len(y) - len(x)) < 0.1 * rate
    assert dominant_frequency(y[: len(x)], rate) == pytest.approx(440, abs=5)


def test_flac_cannot_be_streamed():
    with pytest.raises(InvalidInput, match="FLAC cannot be streamed"):
        StreamEncoder(AudioEncoding.FLAC, 22050)


def test_resampling_keeps_the_pitch_and_filters_what_cannot_be_represented():
    x = sine(1000, 22050) + sine(9000, 22050)
    y = resample(x, 22050, 16000)
    assert len(y) == 16000
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / 16000)
    # 9 kHz is above the 8 kHz Nyquist limit: it must be filtered, not folded to 7 kHz.
    assert spectrum[np.argmin(abs(freqs - 1000))] > 100 * spectrum[np.argmin(abs(freqs - 7000))]
    assert resample(x, 22050, 44100).shape == (44100,)


@pytest.mark.parametrize(
    ("encoding", "requested", "expected"),
    [
        (AudioEncoding.WAV, 0, 22050),
        (AudioEncoding.WAV, 44100, 44100),
        (AudioEncoding.OGG_OPUS, 0, 48000),
        (AudioEncoding.MP3, 0, 22050),
        (AudioEncoding.OGG_OPUS, 16000, 16000),
    ],
)
def test_output_rate(encoding, requested, expected):
    assert output_rate(encoding, requested, 22050) == expected


@pytest.mark.parametrize(
    ("encoding", "requested"),
    [(AudioEncoding.WAV, -1), (AudioEncoding.WAV, 1), (AudioEncoding.WAV, 10**9), (AudioEncoding.OGG_OPUS, 44100)],
)
def test_bad_output_rates_are_refused(encoding, requested):
    with pytest.raises(InvalidInput):
        output_rate(encoding, requested, 22050)


def wav_bytes(x: np.ndarray, rate: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, x, rate, format="WAV")
    return buffer.getvalue()


def test_stereo_reference_is_mixed_down_and_keeps_its_rate():
    stereo = np.stack([sine(rate=48000), sine(rate=48000)], axis=1)
    ref = decode_reference(ReferenceClip(wav_bytes(stereo, 48000), "hello there"), max_seconds=30)
    assert ref.samples.ndim == 1 and ref.sample_rate == 48000 and ref.transcript == "hello there"


@pytest.mark.parametrize(
    ("audio", "transcript", "message"),
    [
        (b"", "hi", "empty"),
        (b"not audio at all" * 10, "hi", "could not be decoded"),
        (None, "", "transcript is empty"),
        ("short", "hi", "at least"),
        ("long", "hi", "limit"),
    ],
)
def test_bad_references_are_refused_with_a_reason(audio, transcript, message):
    if audio is None:
        audio = wav_bytes(sine(), 22050)
    elif audio == "short":
        audio = wav_bytes(sine(seconds=0.1), 22050)
    elif audio == "long":
        audio = wav_bytes(sine(seconds=3), 22050)
    with pytest.raises(InvalidInput, match=message):
        decode_reference(ReferenceClip(audio, transcript), max_seconds=2)


def test_truncated_reference_is_refused():
    data = wav_bytes(sine(), 22050)[:30]
    with pytest.raises(InvalidInput):
        decode_reference(ReferenceClip(data, "hi"), max_seconds=30)
