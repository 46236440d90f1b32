"""Audio returned by the clients."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voxbatch.tts.v1 import tts_pb2 as pb

from .options import Encoding


@dataclass(frozen=True)
class Timings:
    queue_wait_seconds: float
    batch_size: int
    compute_seconds: float
    total_seconds: float
    cache_hit: bool
    prompt_encoded: bool = False  # the server encoded reference audio for this request
    prompt_encode_seconds: float = 0.0
    # Streams, as a listener playing from the first chunk hears them (up to this chunk): times a
    # chunk came after the audio before it had played, seconds waited for late chunks, and audio
    # still buffered when the latest chunk with audio was sent.
    stalls: int = 0
    stalled_seconds: float = 0.0
    final_slack_seconds: float = 0.0

    @classmethod
    def from_pb(cls, t: pb.SynthesisTimings) -> Timings:
        return cls(
            t.queue_wait_seconds, t.batch_size, t.compute_seconds, t.total_seconds, t.cache_hit,
            t.prompt_encoded, t.prompt_encode_seconds, t.stalls, t.stalled_seconds, t.final_slack_seconds,
        )


@dataclass(frozen=True)
class Audio:
    """Encoded audio with what the server said about it."""

    data: bytes
    encoding: Encoding
    sample_rate: int
    duration_seconds: float
    request_id: str = ""
    timings: Timings | None = None
    length_capped: bool = False
    badcase_retries: int = 0  # sentences the server generated again (retry_badcase)

    @classmethod
    def from_response(cls, r: pb.SynthesizeResponse) -> Audio:
        return cls(
            data=r.audio,
            encoding=Encoding(r.encoding),
            sample_rate=r.sample_rate_hz,
            duration_seconds=r.duration_seconds,
            request_id=r.request_id,
            timings=Timings.from_pb(r.timings),
            length_capped=r.length_capped,
            badcase_retries=r.badcase_retries,
        )

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.data)
        return path

    def to_numpy(self) -> np.ndarray:
        """Mono float32 samples in [-1, 1] at `sample_rate`."""
        if self.encoding is Encoding.PCM_S16LE:
            return np.frombuffer(self.data, dtype="<i2").astype(np.float32) / 32768.0
        import soundfile as sf

        with sf.SoundFile(io.BytesIO(self.data)) as f:
            blocks = []
            while True:  # block reads also cope with stream headers of unknown length
                block = f.read(65536, dtype="float32", always_2d=True)
                if not len(block):
                    break
                blocks.append(block[:, 0])
        return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class Chunk:
    """One piece of a stream; joining every chunk's `data` gives one file."""

    data: bytes
    sequence: int
    sentence_index: int
    sentence_count: int
    text_start: int
    text_end: int
    audio_offset_seconds: float
    duration_seconds: float
    final: bool
    encoding: Encoding
    sample_rate: int
    request_id: str
    timings: Timings
    length_capped: bool = False

    @classmethod
    def from_response(cls, r: pb.StreamSynthesizeResponse) -> Chunk:
        return cls(
            data=r.audio,
            sequence=r.sequence,
            sentence_index=r.sentence_index,
            sentence_count=r.sentence_count,
            text_start=r.text_start,
            text_end=r.text_end,
            audio_offset_seconds=r.audio_offset_seconds,
            duration_seconds=r.duration_seconds,
            final=r.final,
            encoding=Encoding(r.encoding),
            sample_rate=r.sample_rate_hz,
            request_id=r.request_id,
            timings=Timings.from_pb(r.timings),
            length_capped=r.length_capped,
        )


def join_chunks(chunks: list[Chunk]) -> Audio:
    """The whole stream as one Audio."""
    if not chunks:
        raise ValueError("no chunks to join")
    last = chunks[-1]
    return Audio(
        data=b"".join(c.data for c in chunks),
        encoding=last.encoding,
        sample_rate=last.sample_rate,
        duration_seconds=sum(c.duration_seconds for c in chunks),
        request_id=last.request_id,
        length_capped=any(c.length_capped for c in chunks),
    )
