"""A controllable engine for batcher and server tests: a tone per sentence, with knobs to make
it slow, fail on chosen texts, or run out of memory above a batch size. It records every batch
it ran so tests can assert how work was grouped."""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from voxbatch_server.domain import EngineAudio, EngineInfo, ParameterSpec, SpeechTask, Voice
from voxbatch_server.engines import Engine
from voxbatch_server.errors import EngineOutOfMemory, InvalidInput

RATE = 16000


@dataclass(frozen=True, eq=False)
class ToneWork:
    text: str
    rate: float


class ToneEngine(Engine):
    def __init__(
        self,
        delay_s: float = 0.0,
        fail_on: str | None = None,
        oom_above: int | None = None,
        bytes_per_char: int = 1000,
        fixed_bytes: int = 0,
        gate: threading.Event | None = None,
        cloning: bool = False,
        prepare_delay_s: float = 0.0,
        voice_design: bool = False,
        languages: tuple[str, ...] = ("en",),
    ) -> None:
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.oom_above = oom_above
        self.bytes_per_char = bytes_per_char
        self.fixed_bytes = fixed_bytes
        self.gate = gate
        self.prepare_delay_s = prepare_delay_s
        self.preparing = threading.Event()  # set when prepare starts (a request is being phonemised)
        self.batches: list[list[str]] = []
        self.oom_batches: list[list[str]] = []
        self._lock = threading.Lock()
        self.info = EngineInfo(
            name="tone",
            model="tone-test",
            native_sample_rate=RATE,
            voices=(Voice("tone", "en-US", "test tone", RATE, languages), Voice("low", "en-US", "lower tone", RATE, languages)),
            default_voice="tone",
            parameters=(ParameterSpec("speaking_rate", 0.5, 2.0, 1.0, "duration scale"),),
            supports_cloning=cloning or voice_design,
            supports_instructions=voice_design,
            supports_isolated_reference=voice_design,
        )
        self.tasks: list[SpeechTask] = []  # every task prepared, to check what reached the engine

    def prepare(self, task: SpeechTask) -> ToneWork:
        self.tasks.append(task)
        if "unspeakable" in task.text:
            raise InvalidInput("the tone engine cannot speak 'unspeakable'")
        self.preparing.set()
        if self.prepare_delay_s:
            time.sleep(self.prepare_delay_s)
        return ToneWork(task.text, task.params.speaking_rate or 1.0)

    def deterministic(self, task: SpeechTask) -> bool:
        return True  # a tone per text: nothing is drawn at random

    def batch_key(self, prepared: ToneWork) -> Hashable:
        return prepared.rate

    def memory_cost(self, batch: Sequence[ToneWork]) -> int:
        return self.fixed_bytes + len(batch) * max(len(w.text) for w in batch) * self.bytes_per_char

    def run_batch(self, batch: Sequence[ToneWork], session=None) -> list[EngineAudio]:
        texts = [w.text for w in batch]
        if self.gate is not None:
            self.gate.wait(10)
        if self.oom_above is not None and len(batch) > self.oom_above:
            with self._lock:
                self.oom_batches.append(texts)
            raise EngineOutOfMemory(f"{len(batch)} rows")
        with self._lock:
            self.batches.append(texts)
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail_on is not None and any(self.fail_on in t for t in texts):
            raise RuntimeError("boom: the engine crashed")
        return [tone(w.text, w.rate) for w in batch]


def tone(text: str, rate: float = 1.0) -> EngineAudio:
    """A deterministic tone whose length and pitch depend on the text; a text with 'runaway' in
    it is reported as stopped at the length cap, as VoxCPM reports a runaway sentence."""
    n = int(RATE * 0.05 * max(1, len(text)) / rate)
    freq = 200 + (sum(map(ord, text)) % 600)
    t = np.arange(n) / RATE
    return EngineAudio((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), RATE, length_capped="runaway" in text)
