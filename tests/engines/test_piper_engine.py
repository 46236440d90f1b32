"""The Piper engine: batched output equals rows run alone, and its memory estimate holds."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from voxbatch_server.domain import EngineParams, SpeechTask
from voxbatch_server.engines.piper_engine import PiperEngine
from voxbatch_server.errors import InvalidInput

TEXTS = ["Hi.", "The quick brown fox jumps over the lazy dog.", "Batching should not change a single word, should it?"]


@pytest.fixture(scope="module")
def padded():
    return PiperEngine(batch_mode="padded")


def prepare(engine, text, **params):
    return engine.prepare(SpeechTask(text, "joe", EngineParams(**params)))


def test_padded_batch_gives_each_row_the_audio_it_gets_alone(padded):
    work = [prepare(padded, t, temperature=0.0) for t in TEXTS]
    together = padded.run_batch(work)
    for w, batched in zip(work, together):
        alone = padded.run_batch([w])[0]
        assert len(batched.samples) == len(alone.samples)
        np.testing.assert_allclose(batched.samples, alone.samples, atol=2e-3)


def test_speaking_rate_changes_the_length_and_the_batch_key(padded):
    slow, fast = prepare(padded, TEXTS[1], speaking_rate=0.5), prepare(padded, TEXTS[1], speaking_rate=2.0)
    assert padded.batch_key(slow) != padded.batch_key(fast)
    slow_audio, fast_audio = padded.run_batch([slow])[0], padded.run_batch([fast])[0]
    assert len(slow_audio.samples) > 2 * len(fast_audio.samples)


def test_text_without_pronounceable_content_is_refused(padded):
    with pytest.raises(InvalidInput):
        prepare(padded, "")


def test_memory_estimate_covers_the_measured_peak_without_wild_overestimate():
    script = textwrap.dedent(
        """
        import json
        def peak_rss():
            # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) parent.
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        from voxbatch_server.domain import EngineParams, SpeechTask
        from voxbatch_server.engines.piper_engine import PiperEngine
        e = PiperEngine(batch_mode="padded")
        w = e.prepare(SpeechTask("The quick brown fox jumps over the lazy dog near the quiet river bank today", "joe", EngineParams()))
        e.run_batch([e.prepare(SpeechTask("Hi.", "joe", EngineParams()))])
        base = peak_rss()
        e.run_batch([w] * 6)
        peak = peak_rss()
        print(json.dumps({"measured": peak - base, "estimated": e.memory_cost([w] * 6)}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["measured"] <= figures["estimated"] <= 3 * figures["measured"], figures


class RecordingSession:
    """Stands in for the batcher's session: records when each row was handed over."""

    def __init__(self, cancelled=(), alone=True):
        self.handed: list[tuple[int, int]] = []  # (row index, samples)
        self._cancelled = set(cancelled)
        self._alone = alone

    def alone(self):
        return self._alone

    def complete(self, index, result, batch_size):
        self.handed.append((index, len(result.samples)))

    def cancelled(self, index):
        return index in self._cancelled


def test_rows_mode_hands_each_request_over_as_soon_as_its_rows_are_done():
    engine = PiperEngine(batch_mode="rows")
    work = [prepare(engine, t, temperature=0.0) for t in TEXTS]
    session = RecordingSession(cancelled={1})
    results = engine.run_batch(work, session)
    # Each request is handed over in turn (the first before the later rows are computed); the
    # row whose caller left is skipped, not computed.
    assert [i for i, _ in session.handed] == [0, 2]
    assert [n for _, n in session.handed] == [len(results[0].samples), len(results[2].samples)]
    assert len(results[1].samples) == 0
    alone = engine.run_batch([work[2]])[0]
    np.testing.assert_allclose(results[2].samples, alone.samples, atol=2e-3)


def test_two_workers_share_the_cores_and_give_the_audio_of_a_row_alone():
    """With two workers a row beside another batch runs on its share of the cores (its own
    onnxruntime session): the audio is the same, and two batches may run at once."""
    from concurrent.futures import ThreadPoolExecutor

    engine = PiperEngine(batch_mode="rows", workers=2)
    assert engine.concurrent_batches == 2
    work = [prepare(engine, t, temperature=0.0) for t in TEXTS[1:]]
    alone = [engine.run_batch([w], RecordingSession())[0].samples for w in work]
    beside = [engine.run_batch([w], RecordingSession(alone=False))[0].samples for w in work]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda w: engine.run_batch([w], RecordingSession())[0].samples, work))
    for a, b, t in zip(alone, beside, together):
        assert len(a) == len(b) == len(t)
        np.testing.assert_allclose(b, a, atol=2e-3)
        np.testing.assert_allclose(t, a, atol=2e-3)
