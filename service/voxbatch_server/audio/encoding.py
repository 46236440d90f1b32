"""Encode float audio into the formats of the contract, whole or as a stream of byte pieces."""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf

from ..domain import AudioEncoding
from ..errors import InvalidInput

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192000
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
STREAMABLE = (AudioEncoding.WAV, AudioEncoding.PCM_S16LE, AudioEncoding.OGG_OPUS, AudioEncoding.MP3)

# (libsndfile format, subtype, extra SoundFile arguments). MP3 is constant bit rate so that a
# stream without a Xing header still reports its true length to decoders.
_SNDFILE = {
    AudioEncoding.FLAC: ("FLAC", "PCM_16", {}),
    AudioEncoding.OGG_OPUS: ("OGG", "OPUS", {}),
    AudioEncoding.MP3: ("MP3", "MPEG_LAYER_III", {"bitrate_mode": "CONSTANT", "compression_level": 0.4}),
}

MIME_TYPES = {
    AudioEncoding.WAV: "audio/wav",
    AudioEncoding.FLAC: "audio/flac",
    AudioEncoding.OGG_OPUS: "audio/ogg",
    AudioEncoding.MP3: "audio/mpeg",
    AudioEncoding.PCM_S16LE: "audio/L16",
}


def output_rate(encoding: AudioEncoding, requested: int, native: int) -> int:
    """The sample rate to encode at, or InvalidInput with the accepted values."""
    if requested < 0:
        raise InvalidInput(f"sample_rate_hz must be 0 (native) or positive, not {requested}")
    if requested and not MIN_SAMPLE_RATE <= requested <= MAX_SAMPLE_RATE:
        raise InvalidInput(
            f"sample_rate_hz {requested} is out of range: use 0 for the native {native} Hz, "
            f"or {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE}"
        )
    rate = requested or native
    if encoding is AudioEncoding.OGG_OPUS and rate not in OPUS_RATES:
        if not requested:
            return 48000  # Opus cannot carry the native rate; 48 kHz loses nothing.
        raise InvalidInput(f"Ogg/Opus supports {', '.join(map(str, OPUS_RATES))} Hz, not {rate}")
    if encoding is AudioEncoding.MP3 and rate not in MP3_RATES:
        if not requested:
            return min(r for r in MP3_RATES if r >= min(rate, 48000))
        raise InvalidInput(f"MP3 supports {', '.join(map(str, MP3_RATES))} Hz, not {rate}")
    return rate


def check_streamable(encoding: AudioEncoding) -> None:
    if encoding not in STREAMABLE:
        raise InvalidInput(
            f"{encoding.name} cannot be streamed (its header needs the total length); "
            f"use one of {', '.join(e.name for e in STREAMABLE)}"
        )


def to_pcm16(samples: np.ndarray) -> bytes:
    clipped = np.clip(samples, -1.0, 1.0)
    return (np.round(clipped * 32767.0)).astype("<i2").tobytes()


def wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
    """A 44-byte PCM WAV header; unknown length (streaming) uses the 0xFFFFFFFF convention."""
    data = 0xFFFFFFFF if data_bytes is None else data_bytes
    riff = 0xFFFFFFFF if data_bytes is None else 36 + data_bytes
    return (
        b"RIFF" + struct.pack("<I", riff) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data" + struct.pack("<I", data)
    )


def encode(samples: np.ndarray, sample_rate: int, encoding: AudioEncoding) -> bytes:
    """The whole audio as one complete file."""
    if encoding is AudioEncoding.PCM_S16LE:
        return to_pcm16(samples)
    if encoding is AudioEncoding.WAV:
        pcm = to_pcm16(samples)
        return wav_header(sample_rate, len(pcm)) + pcm
    fmt, subtype, extra = _SNDFILE[encoding]
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", samplerate=sample_rate, channels=1, format=fmt, subtype=subtype, **extra) as f:
        f.write(samples.astype(np.float32))
    return buffer.getvalue()


class StreamEncoder:
    """Encodes audio piece by piece; the concatenation of every returned piece is one file."""

    def __init__(self, encoding: AudioEncoding, sample_rate: int) -> None:
        check_streamable(encoding)
        self.encoding = encoding
        self.sample_rate = sample_rate
        self._started = False
        self._sink: _AppendOnlySink | None = None
        self._file: sf.SoundFile | None = None
        if encoding in _SNDFILE:
            fmt, subtype, extra = _SNDFILE[encoding]
            self._sink = _AppendOnlySink()
            self._file = sf.SoundFile(
                self._sink, "w", samplerate=sample_rate, channels=1, format=fmt, subtype=subtype, **extra
            )

    def write(self, samples: np.ndarray) -> bytes:
        if self._file is not None:
            self._file.write(samples.astype(np.float32))
            return self._sink.take()
        header = b""
        if not self._started and self.encoding is AudioEncoding.WAV:
            header = wav_header(self.sample_rate, None)
        self._started = True
        return header + to_pcm16(samples)

    def finish(self) -> bytes:
        if self._file is not None:
            self._file.close()
            return self._sink.take()
        if not self._started and self.encoding is AudioEncoding.WAV:
            self._started = True
            return wav_header(self.sample_rate, None)
        return b""


class _AppendOnlySink(io.RawIOBase):
    """A seekable in-memory file that hands out only bytes appended since the last take().

    libsndfile seeks back at close to patch headers; bytes already sent cannot change, so the
    formats used for streaming are the ones whose first bytes stay valid (Ogg, CBR MP3).
    """

    def __init__(self) -> None:
        super().__init__()
        self._buf = bytearray()
        self._pos = 0
        self._taken = 0

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        end = self._pos + len(data)
        if end > len(self._buf):
            self._buf.extend(b"\0" * (end - len(self._buf)))
        self._buf[self._pos : end] = data
        self._pos = end
        return len(data)

    def read(self, size: int = -1) -> bytes:
        end = len(self._buf) if size is None or size < 0 else self._pos + size
        chunk = bytes(self._buf[self._pos : end])
        self._pos += len(chunk)
        return chunk

    def readinto(self, buffer) -> int:
        chunk = self.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._buf)}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def take(self) -> bytes:
        piece = bytes(self._buf[self._taken :])
        self._taken = len(self._buf)
        return piece
