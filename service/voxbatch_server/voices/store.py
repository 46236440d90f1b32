"""What a saved voice is, and the small interface every voice store implements."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

from ..domain import VoicePrompt
from ..errors import InvalidInput

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 500
MAX_INSTRUCTIONS_CHARS = 2000


def check_name(name: str) -> str:
    if not name:
        raise InvalidInput("the voice name is empty; use 1-64 lower-case letters, digits, '-', '_' or '.'")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"the voice name is {len(name)} characters long; the limit is {MAX_NAME_CHARS}")
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidInput(
            f"the voice name {name!r} is not allowed; use lower-case letters, digits, '-', '_' and '.', "
            "starting with a letter or digit (such as narrator-anna)"
        )
    return name


@dataclass(frozen=True)
class SavedVoice:
    """A saved voice: its metadata, the clip as uploaded and the engine's encoded prompt."""

    name: str
    description: str
    languages: tuple[str, ...]
    transcript: str
    instructions: str
    created: float  # Unix seconds
    reference_seconds: float
    prompt_engine: str  # VoicePrompt.engine: who can read `prompt`
    prompt_digest: str
    clip: bytes = field(default=b"", repr=False)
    prompt: bytes = field(default=b"", repr=False)

    def meta_json(self) -> str:
        meta = asdict(self)
        del meta["clip"], meta["prompt"]
        return json.dumps(meta, ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_parts(cls, meta_json: str | bytes, clip: bytes = b"", prompt: bytes = b"") -> SavedVoice:
        meta = json.loads(meta_json)
        meta["languages"] = tuple(meta["languages"])
        return cls(**meta, clip=clip, prompt=prompt)

    def voice_prompt(self) -> VoicePrompt:
        return VoicePrompt(self.prompt_engine, self.transcript, self.prompt, self.prompt_digest)

    def without_data(self) -> SavedVoice:
        return replace(self, clip=b"", prompt=b"")


class VoiceStore(Protocol):
    """Where saved voices live. Every method may raise StoreUnavailable when the store is out of
    reach. `create` is atomic: of two concurrent creates of one name, exactly one succeeds."""

    backend: str  # "folder" or "redis"

    async def create(self, voice: SavedVoice, max_voices: int) -> None:
        """Store a new voice; AlreadyExists when the name is taken, StoreFull at max_voices."""

    async def get(self, name: str) -> SavedVoice | None:
        """The voice with its clip and prompt, or None."""

    async def list(self) -> list[SavedVoice]:
        """Every voice's metadata (clip and prompt left empty), by name."""

    async def delete(self, name: str) -> bool:
        """Remove a voice; False when there was none."""

    async def close(self) -> None:
        """Release connections."""
