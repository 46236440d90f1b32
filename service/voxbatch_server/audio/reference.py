"""Decoding of voice-cloning reference clips sent by clients."""

from __future__ import annotations

import io
import re

import numpy as np
import soundfile as sf

from ..domain import ReferenceAudio, ReferenceClip
from ..errors import InvalidInput

MIN_SECONDS = 0.5


def decode_reference(
    clip: ReferenceClip, max_seconds: float, *, transcript_required: bool = True, field: str = "reference"
) -> ReferenceAudio:
    """Decode any format libsndfile reads; mix stereo down to mono; keep the clip's own rate.

    Without `transcript_required` (engines that clone from a clip alone) the transcript may be
    empty; `field` names the request field in error messages."""
    if not clip.audio:
        raise InvalidInput(f"{field}.audio is empty; send a WAV, FLAC, Ogg or MP3 recording")
    if transcript_required and not clip.transcript.strip():
        raise InvalidInput(f"{field}.transcript is empty; type what the {field} recording says")
    try:
        samples, rate = sf.read(io.BytesIO(clip.audio), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types for bad input
        # libsndfile names the in-memory file it was handed ("Error opening <_io.BytesIO object
        # at 0x...>: ..."): only the reason means anything to the client.
        reason = re.sub(r"^Error opening <[^>]*>:\s*", "", str(exc)).strip() or type(exc).__name__
        raise InvalidInput(
            f"{field}.audio could not be decoded as audio ({reason}); send a WAV, FLAC, Ogg or MP3 recording"
        ) from None
    if samples.size == 0:
        raise InvalidInput(f"{field}.audio decodes to no samples")
    mono = samples.mean(axis=1)
    seconds = len(mono) / rate
    if seconds < MIN_SECONDS:
        raise InvalidInput(f"{field}.audio is {seconds:.2f} s long; send at least {MIN_SECONDS} s")
    if seconds > max_seconds:
        raise InvalidInput(f"{field}.audio is {seconds:.1f} s long; the limit is {max_seconds:.0f} s")
    if not np.all(np.isfinite(mono)):
        raise InvalidInput(f"{field}.audio contains invalid samples")
    return ReferenceAudio(samples=mono.astype(np.float32), sample_rate=int(rate), transcript=clip.transcript.strip())
