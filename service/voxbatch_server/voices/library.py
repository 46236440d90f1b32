"""The voice library: built-in voices from the engine plus saved ones from a store.

Creating a voice validates its clip once, has the engine encode the prompt once, and stores both;
the synthesis pipeline resolves a voice name to its stored prompt, so requests by name encode
nothing. A request holds the prompt it resolved, so deleting the voice meanwhile breaks nothing."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..audio.reference import decode_reference
from ..domain import ReferenceClip, Voice, VoicePrompt
from ..engines import Engine
from ..errors import AlreadyExists, InvalidInput, NotFound, StoreFull, Unsupported
from ..settings import Settings
from .store import MAX_DESCRIPTION_CHARS, MAX_INSTRUCTIONS_CHARS, SavedVoice, VoiceStore, check_name

log = logging.getLogger(__name__)

_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")


def make_voice_store(settings: Settings) -> VoiceStore:
    """Redis when --voices-store says so (or auto with --redis-url), else the folder."""
    backend = settings.voices_store
    if backend == "auto":
        backend = "redis" if settings.redis_url else "folder"
    if backend == "redis":
        from .redis_store import RedisVoiceStore

        return RedisVoiceStore(settings.redis_url)
    from .folder_store import FolderVoiceStore

    return FolderVoiceStore(settings.voices_dir or default_voices_dir())


def default_voices_dir() -> Path:
    return Path.home() / ".local" / "share" / "voxbatch" / "voices"


@dataclass(frozen=True)
class ResolvedVoice:
    """What a request's voice name stands for."""

    voice: Voice
    prompt: VoicePrompt | None = None  # a saved voice's stored prompt
    saved: SavedVoice | None = None


class VoiceLibrary:
    def __init__(self, engine: Engine, store: VoiceStore, settings: Settings) -> None:
        self.engine = engine
        self.store = store
        self.max_voices = settings.max_saved_voices
        self.max_clip_bytes = settings.max_voice_clip_mb << 20
        self.max_reference_seconds = settings.max_reference_seconds

    @property
    def builtin(self) -> dict[str, Voice]:
        return {v.name: v for v in self.engine.info.voices}

    # -- RPCs -------------------------------------------------------------------------------

    async def create(
        self, name: str, clip: ReferenceClip, description: str = "", languages: tuple[str, ...] = (), instructions: str = ""
    ) -> Voice:
        info = self.engine.info
        check_name(name)
        if not info.supports_cloning:
            raise Unsupported(f"the {info.name} engine cannot clone voices, so it cannot save any; serve VoxCPM to save voices")
        if name in self.builtin:
            raise AlreadyExists(f"{name!r} is a built-in voice of the {info.name} engine; pick another name")
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise InvalidInput(f"the description is {len(description)} characters long; the limit is {MAX_DESCRIPTION_CHARS}")
        if instructions.strip() and not info.supports_instructions:
            raise InvalidInput(f"the {info.name} engine ({info.model}) cannot follow instructions; leave them empty")
        if len(instructions) > MAX_INSTRUCTIONS_CHARS:
            raise InvalidInput(f"the instructions are {len(instructions)} characters long; the limit is {MAX_INSTRUCTIONS_CHARS}")
        if len(clip.audio) > self.max_clip_bytes:
            raise StoreFull(
                f"reference.audio is {len(clip.audio) / 2**20:.1f} MiB; saved voices take at most "
                f"{self.max_clip_bytes >> 20} MiB (compress it, or trim it to the speech)"
            )
        languages = self._check_languages(languages)
        reference = await asyncio.to_thread(
            decode_reference, clip, self.max_reference_seconds, transcript_required=not info.supports_isolated_reference
        )
        started = time.perf_counter()
        prompt = await asyncio.to_thread(self.engine.encode_voice, reference)
        saved = SavedVoice(
            name=name,
            description=description.strip(),
            languages=languages,
            transcript=reference.transcript,
            instructions=instructions.strip(),
            created=time.time(),
            reference_seconds=round(len(reference.samples) / reference.sample_rate, 3),
            prompt_engine=prompt.engine,
            prompt_digest=prompt.digest,
            clip=clip.audio,
            prompt=prompt.data,
        )
        await self.store.create(saved, self.max_voices)
        log.info("saved voice %s: %.1f s clip, prompt of %d bytes encoded in %.3f s, store %s",
                 name, saved.reference_seconds, len(prompt.data), time.perf_counter() - started, self.store.backend)
        return self.as_voice(saved)

    async def get(self, name: str) -> tuple[Voice, bytes]:
        """The voice and, for a saved one, its clip as uploaded."""
        if name in self.builtin:
            return self.builtin[name], b""
        saved = await self.store.get(name) if _plausible(name) else None
        if saved is None:
            raise NotFound(f"no voice named {name!r}; ListVoices shows the voices this server has")
        return self.as_voice(saved), saved.clip

    async def delete(self, name: str) -> None:
        if name in self.builtin:
            raise Unsupported(f"{name!r} is a built-in voice of the {self.engine.info.name} engine and cannot be deleted")
        if not (_plausible(name) and await self.store.delete(name)):
            raise NotFound(f"no saved voice named {name!r}; ListVoices shows the voices this server has")
        log.info("deleted saved voice %s", name)

    async def list(self) -> list[Voice]:
        """Built-in voices first (the default one first), then saved voices by name."""
        info = self.engine.info
        builtin = sorted(info.voices, key=lambda v: v.name != info.default_voice)
        saved = await self.store.list() if info.supports_cloning else []
        return [*builtin, *(self.as_voice(s) for s in saved)]

    # -- the pipeline's side ------------------------------------------------------------------

    async def resolve(self, name: str) -> ResolvedVoice:
        """A request's voice: built-in, or saved with its prompt. Unknown names are the request's fault."""
        if name in self.builtin:
            return ResolvedVoice(self.builtin[name])
        saved = await self.store.get(name) if _plausible(name) and self.engine.info.supports_cloning else None
        if saved is None:
            names = ", ".join(self.builtin)
            saved_too = ", and the saved voices ListVoices shows" if self.engine.info.supports_cloning else ""
            raise InvalidInput(f"unknown voice {name!r}; this server has: {names}{saved_too}")
        return ResolvedVoice(self.as_voice(saved), saved.voice_prompt(), saved)

    def as_voice(self, saved: SavedVoice) -> Voice:
        info = self.engine.info
        return Voice(
            name=saved.name,
            language_code=saved.languages[0] if len(saved.languages) == 1 else "multilingual",
            description=saved.description,
            sample_rate_hz=info.native_sample_rate,
            languages=saved.languages,
            kind="saved",
            created=saved.created,
            transcript=saved.transcript,
            instructions=saved.instructions,
            reference_seconds=saved.reference_seconds,
        )

    def engine_languages(self) -> tuple[str, ...]:
        found: dict[str, None] = {}
        for voice in self.engine.info.voices:
            found.update(dict.fromkeys(voice.spoken_languages))
        return tuple(found)

    def _check_languages(self, languages: tuple[str, ...]) -> tuple[str, ...]:
        spoken = self.engine_languages()
        if not languages:
            return spoken
        cleaned = tuple(dict.fromkeys(code.strip().lower() for code in languages))
        for code in cleaned:
            if not _LANGUAGE_CODE.fullmatch(code):
                raise InvalidInput(f"language {code!r} is not a BCP-47 code such as en or zh")
            if spoken and code.split("-")[0] not in spoken:
                raise InvalidInput(f"the {self.engine.info.name} engine does not speak {code!r}; it speaks {', '.join(spoken)}")
        return cleaned


def _plausible(name: str) -> bool:
    """A name a store could hold; anything else is unknown without asking the store."""
    try:
        check_name(name)
    except InvalidInput:
        return False
    return True
