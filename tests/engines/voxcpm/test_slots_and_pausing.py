"""Rows live in fixed slots of preallocated caches: joining fills a free slot, leaving frees it,
a row may sit steps out (paused) and still generate exactly its audio, and a step that cannot be
captured runs eager."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from voxbatch_server.engines.voxcpm import compiled, graphs
from voxbatch_server.engines.voxcpm import generate as generation
from voxbatch_server.engines.voxcpm.generate import generate
from voxbatch_server.engines.voxcpm.slots import SlotCache, bucket_for, capacity_for, row_buckets

from .conftest import task
from .test_batched_generation import TEXTS, requests


def assert_same_row(row, alone):
    """The bound of the batch-equivalence tests."""
    np.testing.assert_allclose(row.patches.numpy(), alone.patches.numpy(), atol=1e-5)
    np.testing.assert_allclose(row.audio.numpy(), alone.audio.numpy(), atol=1e-6)


def test_buckets_and_capacities():
    assert row_buckets(8) == (1, 2, 4, 8) and row_buckets(5) == (1, 2, 4, 5) and row_buckets(1) == (1,)
    assert bucket_for(3, (1, 2, 4, 8)) == 4 and bucket_for(5, (1, 2, 4, 5)) == 5 and bucket_for(9, (4, 8)) == 9
    assert capacity_for(10, 4096) == 256 and capacity_for(257, 4096) == 512
    assert capacity_for(3000, 2048) == 3000  # past the model's limit only as far as a row needs


def test_a_slot_cache_moves_its_rows_once_and_keeps_their_lengths():
    cache = SlotCache.empty(2, 4, 1, 8, 3, "cpu", torch.float32)
    k = torch.arange(2 * 1 * 5 * 3, dtype=torch.float32).view(2, 1, 5, 3)
    cache.fill(2, k, -k)
    moved = SlotCache.empty(2, 2, 1, 16, 3, "cpu", torch.float32)
    moved.lengths[1] = 3  # what a pooled cache's last batch left
    cache.copy_rows(moved, [2])
    assert moved.lengths.tolist() == [5, 0]
    assert torch.equal(moved.k[:, 0, :, :5], k) and torch.equal(moved.v[:, 0, :, :5], -k)
    with pytest.raises(RuntimeError, match="does not fit"):
        cache.fill(0, torch.zeros(2, 1, 9, 3), torch.zeros(2, 1, 9, 3))


@pytest.fixture
def batches(monkeypatch):
    """Every RunningBatch that generate makes, to look at its slots afterwards."""
    made = []

    class Recorded(generation.RunningBatch):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(generation, "RunningBatch", Recorded)
    return made


def test_rows_join_into_free_slots_without_reallocating(tiny_engine, batches):
    """Two rows start (bucket 2); a third joins (bucket 4: the one copy); the fourth joins and,
    after the shortest row leaves, a fifth takes its freed slot: no copy for either."""
    first = requests(tiny_engine, [TEXTS[0], TEXTS[3]], (1, 2))
    later = requests(tiny_engine, [TEXTS[1], TEXTS[2], "Ok."], (3, 4, 5))
    seen = []  # at each admission: (slots, cache address, free slots, moves so far)

    def admit(room):
        batch = batches[0]
        seen.append((batch.slots, batch.lm.k.data_ptr(), batch.rows.count(None), batch.moves))
        if len(seen) in (2, 3):
            return [later[len(seen) - 2]]
        if len(seen) == 4:
            return [later[2]]  # asked again only once a row left: the short row's slot is free
        return []

    rows = generate(tiny_engine._net, first, admit=admit, max_rows=4)
    assert [s[0] for s in seen[:4]] == [2, 2, 4, 4]
    assert seen[2][1] == seen[3][1] and seen[3][2] == 1  # same tensors; the freed slot is reused
    assert seen[3][3] == 2  # the first allocation and the move to four slots, nothing since
    for req, row in zip([*first, *later], rows):
        assert_same_row(row, generate(tiny_engine._net, [req])[0])


def test_a_paused_row_generates_what_it_generates_never_paused(tiny_engine):
    """The same rows, same seeds: row 1 sits out steps 2-6 and row 0 steps 4-5; each row's
    audio (and the streamed pieces) equal what it gets unpaused, and the paused steps computed
    fewer rows and sent nothing for the paused row."""
    reqs = requests(tiny_engine, TEXTS[1:4], (7, 8, 9), stream=True)
    asked, reported, pieces = [], [], {}

    def may_wait():
        asked.append(len(asked))
        step = len(asked)
        return {1} | ({0} if step in (4, 5) else set()) if 2 <= step <= 6 else set()

    def on_piece(i, samples):
        pieces.setdefault(i, []).append((len(asked), samples.numpy()))

    rows = generate(tiny_engine._net, reqs, on_piece=on_piece, may_wait=may_wait,
                    on_step=lambda rows, *rest: reported.append((rows, rest[-1])))
    assert reported[:7] == [(3, 0), (2, 1), (2, 1), (1, 2), (1, 2), (2, 1), (3, 0)]
    assert [step for step, _ in pieces[1]][:3] == [1, 7, 8]  # nothing while paused
    for i, req in enumerate(reqs):
        alone = generate(tiny_engine._net, [req])[0]
        assert_same_row(rows[i], alone)
        np.testing.assert_array_equal(np.concatenate([p for _, p in pieces[i]]), rows[i].audio.numpy())
    assert len(rows[1].patches) == reqs[1].max_patches  # pausing cost it steps, not patches


def test_when_every_row_may_wait_they_all_run(tiny_engine):
    reqs = requests(tiny_engine, TEXTS[:2], (1, 2))
    reported = []
    rows = generate(tiny_engine._net, reqs, may_wait=lambda: {0, 1}, on_step=lambda rows, *rest: reported.append(rows))
    assert reported[0] == 2 and len(reported) == max(r.max_patches for r in reqs)
    assert_same_row(rows[0], generate(tiny_engine._net, reqs[:1])[0])


def test_the_engine_asks_its_batch_session_once_per_step_which_rows_may_wait(tiny_engine):
    """run_batch threads the session's rows_that_may_wait into the generation loop and reports
    the paused rows with each step."""

    class Session:
        max_size = 4

        def __init__(self):
            self.asked, self.steps = 0, []

        def rows_that_may_wait(self):
            self.asked += 1
            return frozenset({0}) if self.asked <= 3 else frozenset()

        def step(self, rows, seconds, joined=0, joined_s=0.0, left=0, left_s=0.0, paused=0):
            self.steps.append((rows, paused))

        def work_waiting(self):
            return False

        def cancelled(self, index):
            return False

        def emit(self, *args):
            pass

        def complete(self, *args):
            pass

        def report_memory(self, *args):
            pass

    works = [tiny_engine.prepare(task(text, seed=seed)) for text, seed in zip(TEXTS[1:3], (3, 4))]
    session = Session()
    audio = tiny_engine.run_batch(works, session)
    assert session.asked == len(session.steps) and session.steps[:4] == [(1, 1)] * 3 + [(2, 0)]
    alone = tiny_engine.run_batch(works[:1])[0]
    np.testing.assert_allclose(audio[0].samples, alone.samples, atol=1e-6)



def test_a_batch_whose_step_cannot_be_captured_runs_it_eager(tiny_engine, monkeypatch, caplog):
    """On a GPU a batch that moves to slot tensors of a shape not captured at start-up captures
    their graph between two steps. When that fails (out of memory for the new graph, say), the
    batch runs those steps eager and its rows get the audio they get eager; each shape is tried
    once, with a warning, not on every step."""
    monkeypatch.setattr(torch.cuda, "graph_pool_handle", lambda: None)  # the CPU stands in for the GPU
    tried = []

    def capture(self, tensors, steps):
        tried.append((tensors.lm.slots, tensors.lm.capacity))
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(graphs.CapturedGraphs, "_capture", capture)
    reqs = requests(tiny_engine, TEXTS[:2], (1, 2))
    net = tiny_engine._net
    step = compiled.CompiledStep(net, (1, 2, 4), (reqs[0].steps,), cuda=True)
    monkeypatch.setattr(net, "compiled_step", step)
    with caplog.at_level(logging.WARNING, logger=graphs.__name__):
        rows = generate(net, reqs)
    assert step.calls == max(r.max_patches for r in reqs)  # every step went the captured way first
    assert tried and len(tried) == len(set(tried))
    assert sum("batches of that shape run eager" in r.getMessage() for r in caplog.records) == len(tried)
    monkeypatch.setattr(net, "compiled_step", None)
    for req, row in zip(reqs, rows):
        assert_same_row(row, generate(net, [req])[0])
