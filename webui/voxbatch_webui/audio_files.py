"""Audio bytes as the browser needs them: files to play and to download, and the pieces of a
stream that can be played while the rest is still arriving. Pure functions, no UI."""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf

from voxbatch import Encoding

from .i18n import N_, _

EXTENSIONS = {
    Encoding.WAV: "wav",
    Encoding.FLAC: "flac",
    Encoding.OGG_OPUS: "ogg",
    Encoding.MP3: "mp3",
    Encoding.PCM_S16LE: "pcm",
}
MIME_TYPES = {
    Encoding.WAV: "audio/wav",
    Encoding.FLAC: "audio/flac",
    Encoding.OGG_OPUS: "audio/ogg",
    Encoding.MP3: "audio/mpeg",
    Encoding.PCM_S16LE: "application/octet-stream",
}
LABELS = {
    Encoding.WAV: "WAV",
    Encoding.FLAC: "FLAC",
    Encoding.OGG_OPUS: "Ogg/Opus",
    Encoding.MP3: "MP3",
    Encoding.PCM_S16LE: N_("Raw PCM (16-bit)"),  # shown with _()
}
STREAMABLE = (Encoding.WAV, Encoding.PCM_S16LE, Encoding.OGG_OPUS, Encoding.MP3)
# Sample rates a person can pick, besides the engine's native one. The contract says Ogg/Opus
# carries only these five rates; MP3 takes all of COMMON_RATES.
COMMON_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
WAV_HEADER_BYTES = 44


def wav_header(sample_rate: int, data_bytes: int) -> bytes:
    """A 44-byte header of 16-bit mono PCM WAV."""
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data" + struct.pack("<I", data_bytes)
    )


def pcm_to_wav(pcm: bytes, sample_rate: int) -> bytes:
    return wav_header(sample_rate, len(pcm)) + pcm


def float_to_pcm(samples: np.ndarray) -> bytes:
    return (np.round(np.clip(samples, -1.0, 1.0) * 32767.0)).astype("<i2").tobytes()


def downloadable(data: bytes, encoding: Encoding) -> bytes:
    """The file as a person saves it. A streamed WAV's header says 'unknown length'; its two
    length fields are filled in so that every player shows the right duration."""
    if encoding is Encoding.WAV and data[:4] == b"RIFF" and data[36:40] == b"data":
        body = len(data) - WAV_HEADER_BYTES
        return data[:4] + struct.pack("<I", 36 + body) + data[8:40] + struct.pack("<I", body) + data[44:]
    return data


def playable(data: bytes, encoding: Encoding, sample_rate: int) -> tuple[bytes, str]:
    """Bytes and media type an <audio> element can play: raw PCM gets a WAV header."""
    if encoding is Encoding.PCM_S16LE:
        return pcm_to_wav(data, sample_rate), "audio/wav"
    return downloadable(data, encoding), MIME_TYPES[encoding]


def rate_choices(encoding: Encoding, native: int, minimum: int, maximum: int) -> dict[int, str]:
    """Sample rates to offer for an encoding: 0 (the engine's native rate) and the usual ones."""
    rates = OPUS_RATES if encoding is Encoding.OGG_OPUS else COMMON_RATES
    choices = {0: _("Native ({rate} Hz)", rate=f"{native:,}") if encoding is not Encoding.OGG_OPUS or native in OPUS_RATES
               else _("Native (sent as 48,000 Hz)")}
    for rate in rates:
        if (not minimum or rate >= minimum) and (not maximum or rate <= maximum):
            choices[rate] = f"{rate:,} Hz"
    return choices


class StreamDecoder:
    """Turns the chunks of a stream into pieces the browser can play on their own (WAV), as soon
    as each chunk arrives. WAV and PCM chunks are sliced; Ogg/Opus and MP3 are decoded from the
    bytes so far, starting where the last piece ended (a seek, so the work stays linear)."""

    def __init__(self, encoding: Encoding, sample_rate: int) -> None:
        self.encoding = encoding
        self.sample_rate = sample_rate
        self._data = bytearray()
        self._header_left = WAV_HEADER_BYTES if encoding is Encoding.WAV else 0
        self._odd = b""
        self._decoded = 0

    def feed(self, data: bytes) -> bytes:
        """A WAV file with the audio that `data` completes, or b"" when it completes none yet."""
        if self.encoding in (Encoding.WAV, Encoding.PCM_S16LE):
            if self._header_left:
                skip = min(self._header_left, len(data))
                self._header_left -= skip
                data = data[skip:]
            data = self._odd + data
            whole = len(data) - len(data) % 2
            self._odd = data[whole:]
            return pcm_to_wav(data[:whole], self.sample_rate) if whole else b""
        self._data.extend(data)
        samples = self._decode_new()
        return pcm_to_wav(float_to_pcm(samples), self.sample_rate) if len(samples) else b""

    def _decode_new(self) -> np.ndarray:
        try:  # decoders pre-roll from before the seek point, so the samples match a full decode
            samples = self._read(start=self._decoded)
        except (sf.LibsndfileError, RuntimeError):
            try:  # not enough of the stream yet (only its headers), or a seek the decoder refused
                samples = self._read(start=0)[self._decoded:]
            except (sf.LibsndfileError, RuntimeError):
                return np.zeros(0, dtype=np.float32)
        self._decoded += len(samples)
        return samples

    def _read(self, start: int) -> np.ndarray:
        with sf.SoundFile(io.BytesIO(bytes(self._data))) as f:
            if start:
                f.seek(start)
            blocks = []
            while True:
                block = f.read(65536, dtype="float32", always_2d=True)
                if not len(block):
                    break
                blocks.append(block[:, 0])
        return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
