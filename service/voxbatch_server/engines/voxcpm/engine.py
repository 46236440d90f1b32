"""The VoxCPM engine behind the batcher: validation, prompt encoding, batching, streaming."""

from __future__ import annotations

import hashlib
import io
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...audio.resample import resample
from ...batching import BatchSession
from ...domain import EngineAudio, EngineInfo, ParameterSpec, ReferenceAudio, SpeechTask, Voice, VoicePrompt
from ...errors import EngineOutOfMemory, InvalidInput
from ..base import Engine
from ..peak_memory import PeakMemory
from .compiled import DEFAULT_STEPS, decode_step_mode, prepare_decode_step
from .generate import RowRequest, generate
from .loader import load_checkpoint
from .memory import MemoryModel, RowShape
from .model import AUDIO_START_TOKEN

log = logging.getLogger(__name__)

VOICE = "default"
LANGUAGES = ("zh", "en")  # what VoxCPM 1 and 1.5 were trained to speak
# VoxCPM2's 30 languages, as its model card lists them (Chinese covers its nine dialects).
LANGUAGES_V2 = (
    "zh", "en", "ar", "my", "da", "nl", "fi", "fr", "de", "el", "he", "hi", "id", "it", "ja",
    "km", "ko", "lo", "ms", "no", "pl", "pt", "ru", "es", "sw", "sv", "tl", "th", "tr", "vi",
)
# Generation stops at this many patches per target-text token (plus 10): upstream's runaway
# guard. A row that reaches it is reported as length_capped.
PATCHES_PER_TOKEN = 6
# Bad-case retry, upstream's defaults: a try that generates 6 patches per target token or more
# runs again with the next seed, at most 3 tries in all.
BADCASE_RATIO = 6.0
BADCASE_RETRIES = 2
PROMPT_CACHE_ENTRIES = 64


@dataclass(frozen=True, eq=False)
class VoxWork:
    """A prepared sentence: everything generation needs, plus its memory shape."""

    request: RowRequest
    shape: RowShape


class VoxCPMEngine(Engine):
    def __init__(
        self, model_dir: Path, device: str = "auto", dtype: str | None = None,
        compile: str = "off", compile_max_rows: int = 8, compile_cache_dir: Path | None = None,
        compile_steps: tuple[int, ...] = (DEFAULT_STEPS,),
    ) -> None:
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.model = load_checkpoint(Path(model_dir), device=device, dtype=dtype)
        net = self.model.network
        self._net = net
        # compile_max_rows is the batcher's max batch size: the largest row bucket.
        self.compiled = prepare_decode_step(net, device, compile, compile_max_rows, compile_cache_dir, compile_steps)
        self._prompts: OrderedDict[tuple[str, str], torch.Tensor] = OrderedDict()
        self._prompt_lock = threading.Lock()
        self._memory = MemoryModel(
            self.model.config, torch.finfo(self.model.dtype).bits // 8, fused_attention=device.startswith("cuda"),
            max_rows=compile_max_rows,
        )
        rate = net.audio_vae.output_rate
        v2 = net.is_v2
        about = (
            "The model's own voice; describe another with instructions, or send reference audio (with or "
            "without its transcript) to clone one"
            if v2 else "The model's own voice; send reference audio with its transcript to clone another"
        )
        self.info = EngineInfo(
            name="voxcpm",
            model=Path(model_dir).resolve().name,
            native_sample_rate=rate,
            voices=(Voice(VOICE, "multilingual", about, rate, LANGUAGES_V2 if v2 else LANGUAGES),),
            default_voice=VOICE,
            parameters=(
                ParameterSpec("cfg_value", 0.0, 10.0, 2.0, "Classifier-free guidance: higher follows the text and prompt more closely."),
                ParameterSpec("inference_steps", 1, 100, DEFAULT_STEPS, "Flow-matching solver steps per 160 ms patch; fewer is faster."),
                ParameterSpec("temperature", 0.0, 2.0, 1.0, "Scales the sampling noise; 0 is deterministic."),
                ParameterSpec("seed", 0, 2**32 - 1, 0, "Random seed; unset picks one per request."),
                ParameterSpec(
                    "retry_badcase", 0, 1, 1,
                    "Generate a sentence again (next seed, at most 2 more tries) when it runs to the length cap. "
                    "Unset: on for unseeded unary requests at temperature > 0.",
                ),
            ),
            supports_cloning=True,
            supports_instructions=v2,
            supports_isolated_reference=v2,
            normalize_default=True,  # the model reads digits and symbols poorly; upstream normalises too
            decode_step=decode_step_mode(self.compiled, compile, device),
        )

    # -- Engine interface -------------------------------------------------------------------

    def prepare(self, task: SpeechTask) -> VoxWork:
        text = _one_line(task.text)
        prompt_text, prompt_feats, reference_feats = self._clips(task)
        instructions = _one_line(task.instructions)
        if instructions:
            if not self._net.is_v2:
                raise InvalidInput(f"{self.info.model} (VoxCPM-1.5 generation) cannot follow instructions; leave them empty")
            text = f"({instructions}){text}"  # the official voice-design form: no space after the bracket
        tokens = self.model.tokenizer(prompt_text + text) + [AUDIO_START_TOKEN]
        target_tokens = len(self.model.tokenizer(text))
        if target_tokens == 0:
            raise InvalidInput(f"the model's tokenizer finds nothing to say in {text[:40]!r}")
        max_patches = min(int(target_tokens * PATCHES_PER_TOKEN + 10), self.model.config.max_length)
        p = task.params
        temperature = 1.0 if p.temperature is None else float(p.temperature)
        retry = p.retry_badcase
        if retry and task.stream:
            raise InvalidInput("retry_badcase cannot apply to streamed audio (it is sent as it is made); leave it unset")
        if retry is None:
            retry = p.seed is None and temperature > 0 and not task.stream
        request = RowRequest(
            tokens=tokens,
            prompt_feats=prompt_feats,
            max_patches=max_patches,
            cfg_value=2.0 if p.cfg_value is None else float(p.cfg_value),
            steps=DEFAULT_STEPS if p.inference_steps is None else int(p.inference_steps),
            temperature=temperature,
            seed=secrets.randbits(32) if p.seed is None else int(p.seed),
            stream=task.stream,
            reference_feats=reference_feats,
            badcase_patches=target_tokens * BADCASE_RATIO if retry else None,
            retries=BADCASE_RETRIES if retry else 0,
        )
        positions = request.prefill_length + max_patches + 1
        limit = self.model.config.lm_config.max_position_embeddings
        if positions > limit:
            what = "the sentence and reference need" if task.reference is not None else "the sentence needs"
            raise InvalidInput(f"{what} {positions} positions; the model has {limit}")
        return VoxWork(request, RowShape(request.prefill_length, max_patches))

    def _clips(self, task: SpeechTask) -> tuple[str, torch.Tensor | None, torch.Tensor | None]:
        """(prompt transcript, continuation patches, isolated reference patches) of the task.

        A reference with a transcript is a continuation prompt (both generations); without one,
        VoxCPM2 clones from it in isolation; with `task.prompt`, VoxCPM2 does both."""
        reference, prompt = task.reference, task.prompt
        if task.voice_prompt is not None and prompt is None:
            # Encoded once already (a saved voice, or by the pipeline): nothing to encode here.
            feats = self._prompt_feats(task.voice_prompt)
            if task.voice_prompt.transcript:
                return task.voice_prompt.transcript, feats, None
            return "", None, feats
        if reference is None:
            if prompt is not None:
                raise InvalidInput("prompt needs a reference: the voice to clone")
            return "", None, None
        if not self._net.is_v2 and (prompt is not None or not reference.transcript):
            raise InvalidInput(
                f"{self.info.model} (VoxCPM-1.5 generation) clones only from a reference with its transcript: "
                "set reference.transcript to what the clip says"
            )
        if prompt is None and reference.transcript:
            return reference.transcript, self.encode_prompt(reference, pad="left"), None
        if prompt is not None and not prompt.transcript:
            raise InvalidInput("prompt.transcript is empty; type what the prompt recording says")
        if prompt is not None and reference.transcript:
            raise InvalidInput("reference.transcript must be empty when a prompt is sent: the reference is then used alone")
        isolated = self.encode_prompt(reference, pad="right")
        if prompt is None:
            return "", None, isolated
        return prompt.transcript, self.encode_prompt(prompt, pad="left"), isolated

    def deterministic(self, task: SpeechTask) -> bool:
        return task.params.seed is not None or task.params.temperature == 0

    def batch_key(self, prepared: VoxWork) -> Hashable:
        return prepared.request.steps

    def memory_cost(self, batch: Sequence[VoxWork]) -> int:
        return self._memory.batch_bytes([w.shape for w in batch])

    def run_batch(self, batch: Sequence[VoxWork], session: BatchSession | None = None) -> list[EngineAudio | BaseException]:
        rate = self.info.native_sample_rate

        def on_piece(index: int, samples: torch.Tensor) -> None:
            if session is not None:
                session.emit(index, EngineAudio(samples.numpy().astype(np.float32), rate), len(samples) / rate)

        audios: dict[int, EngineAudio] = {}

        def on_done(index: int, row, batch_rows: int) -> None:
            audios[index] = self._audio(row)
            if session is not None:
                session.complete(index, audios[index], batch_rows)

        cancelled = session.cancelled if session is not None else None
        ran = list(batch)  # and the rows that join while it runs
        admit = _admitter(session, ran) if session is not None else None
        try:
            with PeakMemory(self.device) as peak:
                rows = generate(
                    self._net, [w.request for w in batch], on_piece=on_piece, cancelled=cancelled, admit=admit,
                    on_done=on_done, max_rows=session.max_size if session is not None else None,
                    on_step=session.step if session is not None else None,
                    may_wait=session.rows_that_may_wait if session is not None else None,
                )
        except torch.cuda.OutOfMemoryError as error:
            torch.cuda.empty_cache()
            raise EngineOutOfMemory(str(error)) from error
        if peak.bytes is not None and session is not None:
            session.report_memory(self.memory_cost(ran), peak.bytes)
        # Rows the caller left have no audio; the batcher discards their slots.
        empty = EngineAudio(np.zeros(0, dtype=np.float32), rate)
        return [audios.get(i, empty) for i in range(len(rows))]

    def _audio(self, row) -> EngineAudio:
        return EngineAudio(
            row.audio.numpy().astype(np.float32), self.info.native_sample_rate, length_capped=row.capped,
            badcase_retries=row.retries,
        )

    def device_free_memory(self) -> int | None:
        if self.device.startswith("cuda"):
            free, _total = torch.cuda.mem_get_info()
            return int(free)
        return None

    # -- prompts ----------------------------------------------------------------------------

    def encode_voice(self, reference: ReferenceAudio) -> VoicePrompt:
        """The prompt's latent patches as a .npy file: what a saved voice stores. With a transcript
        it is a continuation prompt (padded on the left); without one (VoxCPM2) an isolated
        reference (padded on the right), as `_clips` encodes them."""
        if not reference.transcript and not self._net.is_v2:
            raise InvalidInput(
                f"{self.info.model} (VoxCPM-1.5 generation) clones only from a reference with its transcript: "
                "set reference.transcript to what the clip says"
            )
        feats = self.encode_prompt(reference, pad="left" if reference.transcript else "right")
        buffer = io.BytesIO()
        np.save(buffer, feats.numpy().astype("<f4"), allow_pickle=False)
        data = buffer.getvalue()
        digest = hashlib.sha256(reference.transcript.encode() + b"\0" + data).hexdigest()
        with self._prompt_lock:
            self._prompts[(digest, "stored")] = feats
            self._trim_prompts()
        return VoicePrompt(self.prompt_owner, reference.transcript, data, digest)

    def _prompt_feats(self, prompt: VoicePrompt) -> torch.Tensor:
        """A stored prompt back as patches; no audio is encoded (cached by digest)."""
        key = (prompt.digest, "stored")
        with self._prompt_lock:
            if key in self._prompts:
                self._prompts.move_to_end(key)
                return self._prompts[key]
        try:
            array = np.load(io.BytesIO(prompt.data), allow_pickle=False)
        except ValueError as error:
            raise InvalidInput(f"the saved voice's prompt cannot be read ({error}); save the voice again") from None
        net = self._net
        if array.ndim != 3 or array.shape[1:] != (net.patch_size, net.audio_vae.latent_dim):
            raise InvalidInput(f"the saved voice's prompt has shape {array.shape}, not this model's; save the voice again")
        feats = torch.from_numpy(array.astype(np.float32))
        with self._prompt_lock:
            self._prompts[key] = feats
            self._trim_prompts()
        return feats

    def _trim_prompts(self) -> None:
        while len(self._prompts) > PROMPT_CACHE_ENTRIES:
            self._prompts.popitem(last=False)

    def encode_prompt(self, clip: ReferenceAudio, pad: str = "left") -> torch.Tensor:
        """A clip -> latent patches (T, P, D), cached by content hash and padding side.

        The clip is padded with silence to whole patches: on the left for a continuation prompt
        (its speech must end where the generated speech starts), on the right for an isolated
        reference, as the official code does."""
        key = (clip.digest, pad)
        with self._prompt_lock:
            if key in self._prompts:
                self._prompts.move_to_end(key)
                return self._prompts[key]
        vae = self._net.audio_vae
        audio = resample(clip.samples, clip.sample_rate, vae.sample_rate)
        patch_len = self._net.prompt_samples
        if len(audio) % patch_len:
            missing = patch_len - len(audio) % patch_len
            audio = np.pad(audio, (missing, 0) if pad == "left" else (0, missing))
        with torch.inference_mode():
            wave = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(self.device)[None, None]
            latents = vae.encode(wave)[0]  # (D, T * P)
        feats = latents.view(vae.latent_dim, -1, self._net.patch_size).permute(1, 2, 0).cpu()
        with self._prompt_lock:
            self._prompts[key] = feats
            self._trim_prompts()
        return feats


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\n", " ")).strip()


def _admitter(session: BatchSession, ran: list[VoxWork]):
    """Continuous batching: compatible requests that arrived while a batch runs join it between
    generation steps instead of waiting for the whole batch to finish (and are added to `ran`)."""

    def admit(room: int) -> list[RowRequest]:
        joined = session.admit(room) if session.work_waiting() else []
        ran.extend(joined)
        return [work.request for work in joined]

    return admit
