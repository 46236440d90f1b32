"""What the synthesis pipeline hands back: a unary result, a stream's pieces, their timings, and
the record of a finished request that the metrics and the server page read."""

from __future__ import annotations

from dataclasses import dataclass

from .text import Sentence


@dataclass
class RequestTimings:
    queue_wait_s: float = 0.0
    batch_size: int = 0
    compute_s: float = 0.0
    total_s: float = 0.0
    cache_hit: bool = False
    batch_ids: tuple[int, ...] = ()  # the batches the request's sentences ran in
    # Streams, as their listener hears them (playback starts at the first chunk): how often a
    # chunk came after the audio before it had played, for how long in all, and the audio still
    # buffered when the last chunk went out.
    stalls: int = 0
    stalled_s: float = 0.0
    final_slack_s: float = 0.0
    prompt_encoded: bool = False  # the engine encoded reference audio for this request
    prompt_encode_s: float = 0.0


@dataclass
class SynthesisResult:
    audio: bytes
    encoding: object
    sample_rate: int
    duration_s: float
    request_id: str
    timings: RequestTimings
    length_capped: bool
    badcase_retries: int = 0


@dataclass
class StreamPiece:
    audio: bytes
    sequence: int
    sentence: Sentence
    sentence_count: int
    audio_offset_s: float
    duration_s: float
    final: bool
    encoding: object
    sample_rate: int
    request_id: str
    timings: RequestTimings
    length_capped: bool


@dataclass(frozen=True)
class RequestRecord:
    """A finished request, for the server page's latency chart and the metrics."""

    end_time: float
    total_s: float
    queue_wait_s: float
    streamed: bool
    first_audio_s: float
    request_id: str = ""
    stalls: int = 0  # streams: times the listener's playback ran dry
    final_slack_s: float = 0.0  # streams: audio still buffered at the last chunk
    badcase_retries: int = 0  # sentences generated again (retry_badcase)
