"""The engine interface the batcher and the synthesis pipeline rely on."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from ..batching import BatchSession
from ..domain import EngineAudio, EngineInfo, ReferenceAudio, SpeechTask, VoicePrompt
from ..errors import Unsupported


class Engine(ABC):
    """A text-to-speech model behind the batcher.

    The pipeline calls `prepare` once per sentence (off the event loop) to validate and encode
    it; the batcher then groups prepared payloads by `batch_key`, budgets them with
    `memory_cost`, and calls `run_batch` in a worker thread.
    """

    info: EngineInfo

    @abstractmethod
    def prepare(self, task: SpeechTask) -> Any:
        """Validate and pre-process one sentence (tokenise, phonemise, encode the prompt).

        Raises InvalidInput when the engine cannot speak it.
        """

    @abstractmethod
    def batch_key(self, prepared: Any) -> Hashable:
        """Payloads with equal keys can share one forward pass."""

    @abstractmethod
    def memory_cost(self, batch: Sequence[Any]) -> int:
        """Estimated peak bytes to run `batch` as one padded batch, fixed costs included,
        weights excluded (they are loaded once and are not part of the budget)."""

    @abstractmethod
    def run_batch(self, batch: Sequence[Any], session: BatchSession) -> Sequence[EngineAudio | BaseException]:
        """Synthesise every payload. Raise EngineOutOfMemory when the batch does not fit."""

    def deterministic(self, task: SpeechTask) -> bool:
        """Whether the task's audio is fully determined by the task (no unseeded sampling).
        Only such results are cached: a cached copy of a random draw would repeat it."""
        return False

    def encode_voice(self, reference: ReferenceAudio) -> VoicePrompt:
        """Encode a decoded reference clip into this engine's prompt, once: the pipeline calls it
        per request that sends reference audio, and once when a voice is saved (the store keeps
        the bytes). `prepare` then finds it in `task.voice_prompt`.

        This default keeps the decoded clip itself, for engines that clone without a separate
        encoding step; engines with a prompt encoder override it."""
        if not self.info.supports_cloning:
            raise Unsupported(f"the {self.info.name} engine cannot clone voices")
        data = np.ascontiguousarray(reference.samples, dtype="<f4").tobytes()
        return VoicePrompt(self.prompt_owner, reference.transcript, data, reference.digest)

    @property
    def prompt_owner(self) -> str:
        """Who can read this engine's encoded prompts: the engine and its model."""
        return f"{self.info.name}/{self.info.model}"

    @property
    def concurrent_batches(self) -> int:
        """How many batches the server runs at once when --workers is 0 (the engine's choice)."""
        return 1

    @property
    def useful_batch_size(self) -> int | None:
        """The most work items that gain anything from sharing a batch, or None for no limit.

        An engine that computes a batch's items one after another gains nothing from batching;
        a large batch of one caller's items would only make another caller's item wait behind
        all of them, where batches of one let the fair-share queue interleave callers."""
        return None

    def device_free_memory(self) -> int | None:
        """Free bytes on the engine's accelerator, or None on a CPU (the budget is then configured)."""
        return None

    def close(self) -> None:
        """Release the model."""
