"""Planning a synthesis request: check it, resolve its voice (a saved one, or the engine's),
decode and encode its reference audio, and split its text into normalised work items. The rest
of the pipeline (synthesis.py) runs the plan through the cache and the batcher.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from .audio.encoding import output_rate
from .audio.reference import decode_reference
from .domain import ReferenceClip, SpeechTask, SynthesisRequest, VoicePrompt
from .engines import Engine
from .errors import InvalidInput
from .normalize import TextNormalizer
from .request_checks import check_params, check_script, check_voice_design
from .settings import Settings
from .text import Sentence, clean_text, group_sentences, split_sentences
from .voices import VoiceLibrary


@dataclass
class Plan:
    """A checked request, split into work items, with its voice resolved and its reference encoded."""

    request: SynthesisRequest
    request_id: str
    sentences: list[Sentence]
    tasks: list[SpeechTask]
    rate: int
    started: float
    sentence_count: int  # sentences in the text; `sentences` holds the work items they were grouped into
    prompt_encode_s: float | None = None  # None: no reference audio was encoded


class Planner:
    def __init__(self, engine: Engine, settings: Settings, voices: VoiceLibrary | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.voices = voices
        self.normalizer = TextNormalizer()
        self._specs = {spec.name: spec for spec in engine.info.parameters}

    async def plan(self, request: SynthesisRequest, stream: bool) -> Plan:
        started = time.perf_counter()
        request_id = request.request_id or uuid.uuid4().hex[:16]
        info = self.engine.info
        text = clean_text(request.text, self.settings.max_text_chars)
        voice = request.voice or info.default_voice
        prompt: VoicePrompt | None = None
        saved = None
        if self.voices is not None:
            resolved = await self.voices.resolve(voice)
            prompt, saved, voice_info = resolved.prompt, resolved.saved, resolved.voice
            if saved is not None and request.reference is not None:
                raise InvalidInput(f"{voice!r} is a saved voice; send either its name or reference audio, not both")
        else:
            voice_info = next((v for v in info.voices if v.name == voice), None)
            if voice_info is None:
                names = ", ".join(v.name for v in info.voices)
                raise InvalidInput(f"unknown voice {voice!r}; this server has: {names}")
        await check_script(text, voice_info, self._all_voices)
        check_params(self.engine.info.name, self._specs, request)
        rate = output_rate(request.encoding, request.sample_rate_hz, info.native_sample_rate)
        check_voice_design(self.engine.info, request)
        reference = None
        encode_s = None
        if request.reference is not None:
            if not info.supports_cloning:
                raise InvalidInput(f"the {info.name} engine cannot clone voices; send no reference audio")
            reference = await asyncio.to_thread(
                decode_reference, request.reference, self.settings.max_reference_seconds,
                transcript_required=not info.supports_isolated_reference,
            )
        if saved is not None and saved.prompt_engine != self.engine.prompt_owner:
            # Saved under another engine or model: encode its clip anew for this one (timed as such).
            reference = await asyncio.to_thread(
                decode_reference, ReferenceClip(saved.clip, saved.transcript), self.settings.max_reference_seconds,
                transcript_required=not info.supports_isolated_reference,
            )
        instructions, continuation = await self._voice_design(request, reference)
        if not instructions and saved is not None and info.supports_instructions:
            instructions = saved.instructions  # the saved voice's default instructions
        if reference is not None:
            encode_started = time.perf_counter()
            if continuation is None:  # encoded once here, for every sentence (else in the engine)
                prompt = await asyncio.to_thread(self.engine.encode_voice, reference)
            encode_s = time.perf_counter() - encode_started
        # Work items: whole sentences grouped up to the preferred length; a stream's first items
        # ramp up from one sentence, so that its audio starts early and never waits.
        split = split_sentences(text, self.settings.max_sentence_chars)
        sentences = group_sentences(text, split, self.settings.work_item_chars, ramp=stream)
        normalize = info.normalize_default if request.normalize is None else request.normalize
        spoken = [s.text for s in sentences]
        if normalize:
            spoken = await asyncio.to_thread(lambda: [self.normalizer.normalize(t) for t in spoken])
        tasks = [
            SpeechTask(t, voice, request.params, reference, stream, instructions=instructions, prompt=continuation,
                       voice_prompt=prompt)
            for t in spoken
        ]
        return Plan(request, request_id, sentences, tasks, rate, started, len(split), encode_s)

    async def _all_voices(self) -> list:
        return await self.voices.list() if self.voices is not None else list(self.engine.info.voices)

    async def _voice_design(self, request: SynthesisRequest, reference):
        """The request's instructions (one line) and its decoded continuation prompt."""
        instructions = " ".join(request.instructions.split())
        if len(instructions) > self.settings.max_text_chars:
            raise InvalidInput(f"instructions are {len(instructions)} characters; the limit is {self.settings.max_text_chars}")
        if request.prompt is None:
            return instructions, None
        if reference is None:
            raise InvalidInput("prompt needs a reference: prompt is the clip to continue from, reference the voice to clone")
        if reference.transcript:
            raise InvalidInput(
                "reference.transcript must be empty when a prompt is sent: the reference is then used alone "
                "(isolated cloning) and the prompt carries the transcript"
            )
        prompt = await asyncio.to_thread(
            decode_reference, request.prompt, self.settings.max_reference_seconds, field="prompt"
        )
        return instructions, prompt
