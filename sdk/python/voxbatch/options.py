"""Request options of the clients, mirroring the contract with Python types."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from voxbatch.tts.v1 import tts_pb2 as pb


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
        key = aliases.get(name.lower(), name.upper())
        try:
            return cls[key]
        except KeyError:
            raise ValueError(f"unknown encoding {name!r}; use one of {', '.join(e.name.lower() for e in cls)}") from None


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
    params = pb.SynthesisParameters()
    for name, value in (
        ("cfg_value", cfg_value),
        ("inference_steps", inference_steps),
        ("temperature", temperature),
        ("seed", seed),
        ("speaking_rate", speaking_rate),
        ("retry_badcase", retry_badcase),
    ):
        if value is not None:
            setattr(params, name, value)
    msg = message_type(
        text=text,
        voice=voice,
        encoding=int(Encoding.parse(encoding)),
        sample_rate_hz=sample_rate,
        parameters=params,
        priority=int(priority),
        request_id=request_id,
        instructions=instructions,
    )
    if reference is not None:
        msg.reference.audio = reference.audio
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
