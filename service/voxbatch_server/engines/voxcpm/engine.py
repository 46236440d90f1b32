"""The VoxCPM engine behind the batcher: validation, prompt encoding, batching, streaming."""

from __future__ import annotations

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
from ...domain import EngineAudio, EngineInfo, ParameterSpec, ReferenceAudio, SpeechTask, Voice
from ...errors import EngineOutOfMemory, InvalidInput
from ..base import Engine
from .generate import STREAM_CONTEXT_PATCHES, RowRequest, generate
from .loader import load_checkpoint
from .memory import MemoryModel, RowShape
from .model import AUDIO_START_TOKEN

log = logging.getLogger(__name__)

VOICE = "default"
# Generation stops at this many patches per target-text token (plus 10): upstream's runaway
# guard. A row that reaches it is reported as length_capped.
PATCHES_PER_TOKEN = 6
PROMPT_CACHE_ENTRIES = 64


@dataclass(frozen=True, eq=False)
class VoxWork:
    """A prepared sentence: everything generation needs, plus its memory shape."""

    request: RowRequest
    shape: RowShape


class VoxCPMEngine(Engine):
    def __init__(
        self, model_dir: Path, device: str = "auto", dtype: str | None = None, stream_window: int = STREAM_CONTEXT_PATCHES
    ) -> None:
        self.stream_window = stream_window
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.model = load_checkpoint(Path(model_dir), device=device, dtype=dtype)
        net = self.model.network
        self._net = net
        self._prompts: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._prompt_lock = threading.Lock()
        self._memory = MemoryModel(
            self.model.config, torch.finfo(self.model.dtype).bits // 8, fused_attention=device.startswith("cuda")
        )
        rate = net.audio_vae.sample_rate
        self.info = EngineInfo(
            name="voxcpm",
            model=Path(model_dir).resolve().name,
            native_sample_rate=rate,
            voices=(Voice(VOICE, "multilingual", "The model's own voice; send reference audio to clone another", rate),),
            default_voice=VOICE,
            parameters=(
                ParameterSpec("cfg_value", 0.0, 10.0, 2.0, "Classifier-free guidance: higher follows the text and prompt more closely."),
                ParameterSpec("inference_steps", 1, 100, 10, "Flow-matching solver steps per 160 ms patch; fewer is faster."),
                ParameterSpec("temperature", 0.0, 2.0, 1.0, "Scales the sampling noise; 0 is deterministic."),
                ParameterSpec("seed", 0, 2**32 - 1, 0, "Random seed; unset picks one per request."),
            ),
            supports_cloning=True,
        )

    # -- Engine interface -------------------------------------------------------------------

    def prepare(self, task: SpeechTask) -> VoxWork:
        text = re.sub(r"\s+", " ", task.text.replace("\n", " ")).strip()
        prompt_text, prompt_feats = "", None
        if task.reference is not None:
            prompt_text = task.reference.transcript
            prompt_feats = self.encode_prompt(task.reference)
        tokens = self.model.tokenizer(prompt_text + text) + [AUDIO_START_TOKEN]
        target_tokens = len(self.model.tokenizer(text))
        if target_tokens == 0:
            raise InvalidInput(f"the model's tokenizer finds nothing to say in {text[:40]!r}")
        prompt_patches = 0 if prompt_feats is None else prompt_feats.shape[0]
        max_patches = min(int(target_tokens * PATCHES_PER_TOKEN + 10), self.model.config.max_length)
        positions = len(tokens) + prompt_patches + max_patches + 1
        limit = self.model.config.lm_config.max_position_embeddings
        if positions > limit:
            raise InvalidInput(f"the sentence and reference need {positions} positions; the model has {limit}")
        p = task.params
        request = RowRequest(
            tokens=tokens,
            prompt_feats=prompt_feats,
            max_patches=max_patches,
            cfg_value=2.0 if p.cfg_value is None else float(p.cfg_value),
            steps=10 if p.inference_steps is None else int(p.inference_steps),
            temperature=1.0 if p.temperature is None else float(p.temperature),
            seed=secrets.randbits(32) if p.seed is None else int(p.seed),
            stream=task.stream,
        )
        return VoxWork(request, RowShape(len(tokens) + prompt_patches, max_patches))

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
        admit = _admitter(session) if session is not None else None
        try:
            rows = generate(
                self._net, [w.request for w in batch], on_piece=on_piece, cancelled=cancelled, admit=admit,
                on_done=on_done, max_rows=session.max_size if session is not None else None,
                stream_window=self.stream_window, on_step=session.step if session is not None else None,
            )
        except torch.cuda.OutOfMemoryError as error:
            torch.cuda.empty_cache()
            raise EngineOutOfMemory(str(error)) from error
        # Rows the caller left have no audio; the batcher discards their slots.
        empty = EngineAudio(np.zeros(0, dtype=np.float32), rate)
        return [audios.get(i, empty) for i in range(len(rows))]

    def _audio(self, row) -> EngineAudio:
        return EngineAudio(row.audio.numpy().astype(np.float32), self.info.native_sample_rate, length_capped=row.capped)

    def device_free_memory(self) -> int | None:
        if self.device.startswith("cuda"):
            free, _total = torch.cuda.mem_get_info()
            return int(free)
        return None

    # -- prompts ----------------------------------------------------------------------------

    def encode_prompt(self, reference: ReferenceAudio) -> torch.Tensor:
        """Reference audio -> latent patches (T, P, D), cached by content hash."""
        key = reference.digest
        with self._prompt_lock:
            if key in self._prompts:
                self._prompts.move_to_end(key)
                return self._prompts[key]
        vae = self._net.audio_vae
        audio = resample(reference.samples, reference.sample_rate, vae.sample_rate)
        patch_len = self._net.patch_samples
        if len(audio) % patch_len:
            audio = np.pad(audio, (patch_len - len(audio) % patch_len, 0))  # left: keep speech at the end
        with torch.inference_mode():
            wave = torch.from_numpy(audio).to(self.device, torch.float32)[None, None]
            latents = vae.encode(wave)[0]  # (D, T * P)
        feats = latents.view(vae.latent_dim, -1, self._net.patch_size).permute(1, 2, 0).cpu()
        with self._prompt_lock:
            self._prompts[key] = feats
            while len(self._prompts) > PROMPT_CACHE_ENTRIES:
                self._prompts.popitem(last=False)
        return feats


def _admitter(session: BatchSession):
    """Continuous batching: compatible requests that arrived while a batch runs join it between
    generation steps instead of waiting for the whole batch to finish."""

    def admit(room: int) -> list[RowRequest]:
        return [work.request for work in session.admit(room)] if session.work_waiting() else []

    return admit
