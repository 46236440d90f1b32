"""Request options of the clients, mirroring the contract with Python types."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from voxbatch.tts.v1 import tts_pb2 as pb

from .errors import invalid_argument


class Encoding(enum.IntEnum):
    WAV = pb.AUDIO_ENCODING_WAV
    FLAC = pb.AUDIO_ENCODING_FLAC
    OGG_OPUS = pb.AUDIO_ENCODING_OGG_OPUS
    MP3 = pb.AUDIO_ENCODING_MP3
    PCM_S16LE = pb.AUDIO_ENCODING_PCM_S16LE

    @classmethod
    def _missing_(cls, value):
        return cls.WAV if value == pb.AUDIO_ENCODING_UNSPECIFIED else None

    @classmethod
    def parse(cls, name: str | Encoding) -> Encoding:
        if isinstance(name, Encoding):
            return name
        aliases = {"ogg": "OGG_OPUS", "opus": "OGG_OPUS", "pcm": "PCM_S16LE", "raw": "PCM_S16LE"}
        try:
            if isinstance(name, str):
                return cls[aliases.get(name.lower(), name.upper())]
            return cls(name)
        except (KeyError, ValueError):
            raise invalid_argument(
                f"unknown encoding {name!r}; use one of {', '.join(e.name.lower() for e in cls)}"
            ) from None


class Priority(enum.IntEnum):
    INTERACTIVE = pb.PRIORITY_INTERACTIVE
    BACKGROUND = pb.PRIORITY_BACKGROUND


@dataclass(frozen=True)
class Reference:
    """A recording to clone the voice from, and what it says.

    An empty transcript clones from the clip alone (engines with supports_isolated_reference,
    such as VoxCPM2); with a transcript the speech continues from the clip."""

    audio: bytes
    transcript: str = ""


def build_request(
    message_type,
    text: str,
    *,
    voice: str = "",
    encoding: Encoding | str = Encoding.WAV,
    sample_rate: int = 0,
    reference: Reference | None = None,
    cfg_value: float | None = None,
    inference_steps: int | None = None,
    temperature: float | None = None,
    seed: int | None = None,
    speaking_rate: float | None = None,
    priority: Priority = Priority.INTERACTIVE,
    request_id: str = "",
    instructions: str = "",
    prompt: Reference | None = None,
    normalize: bool | None = None,
    retry_badcase: bool | None = None,
):
    """The request message; arguments of the wrong type or out of the contract's range raise
    InvalidRequestError (a ValueError) before any call."""
    params = pb.SynthesisParameters()
    for name, value in (("cfg_value", cfg_value), ("temperature", temperature), ("speaking_rate", speaking_rate)):
        if value is not None:
            setattr(params, name, _number(name, value))
    if inference_steps is not None:
        params.inference_steps = _integer("inference_steps", inference_steps, 1, INT32_MAX)
    if seed is not None:
        params.seed = _integer("seed", seed, 0, UINT64_MAX)
    if retry_badcase is not None:
        if not isinstance(retry_badcase, bool):
            raise invalid_argument(f"retry_badcase must be True or False, not {retry_badcase!r}")
        params.retry_badcase = retry_badcase
    for name, value in (("text", text), ("voice", voice), ("request_id", request_id), ("instructions", instructions)):
        if not isinstance(value, str):
            raise invalid_argument(f"{name} must be a string, not {type(value).__name__}")
    try:
        priority = Priority(priority)
    except ValueError:
        raise invalid_argument(f"unknown priority {priority!r}; use Priority.INTERACTIVE or Priority.BACKGROUND") from None
    msg = message_type(
        text=text,
        voice=voice,
        encoding=int(Encoding.parse(encoding)),
        sample_rate_hz=_integer("sample_rate", sample_rate, 0, INT32_MAX, "Hz, 0 for the engine's native rate"),
        parameters=params,
        priority=int(priority),
        request_id=request_id,
        instructions=instructions,
    )
    if reference is not None:
        if not isinstance(reference, Reference) or not isinstance(reference.audio, bytes | bytearray):
            raise invalid_argument("reference must be a voxbatch.Reference(audio=bytes, transcript=str)")
        msg.reference.audio = bytes(reference.audio)
        msg.reference.transcript = reference.transcript
    if prompt is not None:
        msg.prompt.audio = prompt.audio
        msg.prompt.transcript = prompt.transcript
    if normalize is not None:
        msg.normalize = normalize
    return msg


def create_voice_request(
    name: str, reference: Reference, *, description: str = "", languages: Sequence[str] = (), instructions: str = ""
) -> pb.CreateVoiceRequest:
    return pb.CreateVoiceRequest(
        name=name,
        description=description,
        reference=pb.ReferenceAudio(audio=reference.audio, transcript=reference.transcript),
        languages=list(languages),
        instructions=instructions,
    )


INT32_MAX = 2**31 - 1
UINT64_MAX = 2**64 - 1


def _integer(name: str, value, low: int, high: int, unit: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_argument(f"{name} must be a whole number{' of ' + unit if unit else ''}, not {value!r}")
    if not low <= value <= high:
        raise invalid_argument(f"{name} must be between {low} and {high}, not {value}")
    return value


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_argument(f"{name} must be a number, not {value!r}")
    return float(value)
