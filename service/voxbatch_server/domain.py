"""Domain types shared by the synthesis pipeline, the batcher's callers and the engines.

Nothing here knows about protobuf or gRPC: grpc_api/convert.py translates at the edge.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field, fields

import numpy as np


# A call cancelled this close to its deadline ended because of the deadline: the client's own
# timer fires, and cancels the call, a moment before the server's copy of the deadline passes.
DEADLINE_SLACK_S = 0.1


def deadline_passed(deadline: float | None, now: float) -> bool:
    return deadline is not None and now >= deadline - DEADLINE_SLACK_S


class AudioEncoding(enum.Enum):
    WAV = "wav"
    FLAC = "flac"
    OGG_OPUS = "ogg_opus"
    MP3 = "mp3"
    PCM_S16LE = "pcm_s16le"


class Priority(enum.IntEnum):
    """Lower values run first."""

    INTERACTIVE = 0
    BACKGROUND = 1


@dataclass(frozen=True)
class EngineParams:
    """Engine parameters as the client set them; None means 'the engine's default'."""

    cfg_value: float | None = None
    inference_steps: int | None = None
    temperature: float | None = None
    seed: int | None = None
    speaking_rate: float | None = None
    retry_badcase: bool | None = None

    def given(self) -> dict[str, float | int]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class ReferenceClip:
    """A voice-cloning prompt as the client sent it (still encoded)."""

    audio: bytes
    transcript: str


@dataclass(frozen=True)
class SynthesisRequest:
    """One client request, validated only for types; the pipeline validates content."""

    text: str
    voice: str = ""
    reference: ReferenceClip | None = None
    encoding: AudioEncoding = AudioEncoding.WAV
    sample_rate_hz: int = 0
    params: EngineParams = field(default_factory=EngineParams)
    priority: Priority = Priority.INTERACTIVE
    request_id: str = ""
    caller: str = ""  # who sent it (grpc_api/identity.py): fair share and the per-caller cap
    # How the voice should sound and speak, for engines that follow instructions (VoxCPM2).
    instructions: str = ""
    # A continuation prompt (clip + transcript) on top of an isolated `reference` (VoxCPM2).
    prompt: ReferenceClip | None = None
    normalize: bool | None = None  # None: the engine's default (EngineInfo.normalize_default)


@dataclass(frozen=True, eq=False)
class ReferenceAudio:
    """A decoded voice-cloning prompt: mono float32 samples at their own rate."""

    samples: np.ndarray
    sample_rate: int
    transcript: str

    @property
    def digest(self) -> str:
        """Content hash, so engines can cache encoded prompts and the result cache can key on it."""
        h = hashlib.sha256()
        h.update(str(self.sample_rate).encode())
        h.update(self.transcript.encode())
        h.update(np.ascontiguousarray(self.samples, dtype=np.float32).tobytes())
        return h.hexdigest()


@dataclass(frozen=True, eq=False)
class VoicePrompt:
    """A voice-cloning prompt as its engine encoded it: opaque bytes only that engine (and model)
    reads, with what the clip says. Saved voices store it, so requests by name skip the encoding."""

    engine: str  # "name/model" of the engine that encoded it
    transcript: str
    data: bytes
    digest: str  # content hash of data and transcript, for caches and cache keys


@dataclass(frozen=True, eq=False)
class SpeechTask:
    """What an engine is asked to speak: one sentence with everything that shapes its audio."""

    text: str
    voice: str
    params: EngineParams
    reference: ReferenceAudio | None = None
    stream: bool = False  # the caller streams: engines that can, emit audio step by step
    instructions: str = ""
    # Set only with an isolated reference: the clip (with transcript) the speech continues from.
    prompt: ReferenceAudio | None = None
    # The encoded reference, ready for the engine: a saved voice's, or the request's reference's.
    voice_prompt: VoicePrompt | None = None


@dataclass(frozen=True, eq=False)
class EngineAudio:
    """An engine's output for one task: mono float32 samples in [-1, 1]."""

    samples: np.ndarray
    sample_rate: int
    length_capped: bool = False
    badcase_retries: int = 0  # times the engine generated it again (VoxCPM's retry_badcase)


@dataclass(frozen=True)
class Voice:
    name: str
    language_code: str
    description: str
    sample_rate_hz: int
    languages: tuple[str, ...] = ()  # BCP-47 codes the voice speaks; empty: language_code's language
    kind: str = "built_in"  # or "saved"
    created: float = 0.0  # Unix seconds, saved voices
    transcript: str = ""
    instructions: str = ""
    reference_seconds: float = 0.0

    @property
    def spoken_languages(self) -> tuple[str, ...]:
        if self.languages:
            return self.languages
        primary = self.language_code.split("-")[0].lower()
        return (primary,) if primary.isalpha() and 2 <= len(primary) <= 3 else ()


@dataclass(frozen=True)
class ParameterSpec:
    """Range and default of one EngineParams field an engine supports."""

    name: str
    minimum: float
    maximum: float
    default: float
    description: str


@dataclass(frozen=True)
class EngineInfo:
    name: str
    model: str
    native_sample_rate: int
    voices: tuple[Voice, ...]
    default_voice: str
    parameters: tuple[ParameterSpec, ...]
    supports_cloning: bool = False
    supports_instructions: bool = False
    # Clones from a clip alone (no transcript), and takes a continuation prompt besides.
    supports_isolated_reference: bool = False
    normalize_default: bool = False  # spell out numbers, dates, units... unless a request says otherwise
    # How the decode step runs (compiled.decode_step_mode); operators must see a silent fallback.
    decode_step: str = ""


@dataclass
class WorkTimings:
    """How one work item was served by the batcher."""

    queue_wait_s: float = 0.0
    batch_size: int = 0
    compute_s: float = 0.0
    batch_id: int = 0
