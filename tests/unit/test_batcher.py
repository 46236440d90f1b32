"""The batcher's runtime with a controllable engine: grouping, priorities, memory, failures."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from tests.support.engines import ToneEngine, ToneWork, tone
from voxbatch_server.batching import Batcher, BatchLimits
from voxbatch_server.errors import DeadlineExpired, EngineFailure, Overloaded, ShuttingDown, TooLarge


def work(text, rate=1.0):
    return ToneWork(text, rate)


async def started(engine, limits=None, max_queue_size=64):
    batcher = Batcher(engine, limits or BatchLimits(max_batch_size=4, window_s=0.02, memory_budget_bytes=10**9), max_queue_size)
    batcher.start()
    return batcher


async def wait_until(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.005)


async def blocked_first_batch(engine, batcher):
    """Submit one item and wait until the engine is inside it (held by the gate)."""
    first = batcher.submit_many([work("first")], priority=0)[0]
    await wait_until(lambda: batcher.running_batches == 1)
    return first


async def test_lone_request_runs_at_once_in_a_batch_of_one():
    engine = ToneEngine()
    batcher = await started(engine)
    ticket = batcher.submit_many([work("hello")], priority=0)[0]
    audio = await asyncio.wait_for(ticket.result(), 2)
    assert len(audio.samples) == len(tone("hello").samples)
    assert engine.batches == [["hello"]]
    assert ticket.timings.batch_size == 1
    await batcher.drain()


async def test_requests_arriving_while_busy_share_the_next_batch_up_to_max_size():
    gate = threading.Event()
    engine = ToneEngine(gate=gate)
    batcher = await started(engine)
    first = await blocked_first_batch(engine, batcher)
    tickets = batcher.submit_many([work(f"later {i}") for i in range(6)], priority=0)
    await asyncio.sleep(0.05)  # the event loop stays responsive while the engine is blocked
    assert batcher.queue_depth == 6
    gate.set()
    await asyncio.wait_for(asyncio.gather(first.result(), *(t.result() for t in tickets)), 5)
    assert [len(b) for b in engine.batches] == [1, 4, 2]
    assert [t.timings.batch_size for t in tickets] == [4, 4, 4, 4, 2, 2]
    await batcher.drain()


async def test_interactive_work_runs_before_background_work():
    gate = threading.Event()
    engine = ToneEngine(gate=gate)
    batcher = await started(engine, BatchLimits(max_batch_size=2, window_s=0.02, memory_budget_bytes=10**9))
    first = await blocked_first_batch(engine, batcher)
    background = batcher.submit_many([work("bg 1"), work("bg 2")], priority=1)
    interactive = batcher.submit_many([work("now 1"), work("now 2")], priority=0)
    gate.set()
    await asyncio.gather(first.result(), *(t.result() for t in background + interactive))
    assert engine.batches[1:] == [["now 1", "now 2"], ["bg 1", "bg 2"]]
    await batcher.drain()


async def test_only_compatible_work_shares_a_batch():
    gate = threading.Event()
    engine = ToneEngine(gate=gate)
    batcher = await started(engine)
    first = await blocked_first_batch(engine, batcher)
    tickets = batcher.submit_many([work("a", 1.0), work("b", 1.5), work("c", 1.0), work("d", 1.5)], priority=0)
    gate.set()
    await asyncio.gather(first.result(), *(t.result() for t in tickets))
    assert sorted(map(sorted, engine.batches[1:])) == [["a", "c"], ["b", "d"]]
    await batcher.drain()


async def test_memory_budget_splits_batches_and_counts_the_splits():
    gate = threading.Event()
    # Each 10-character text costs 10 x 100 bytes per row; the budget takes two rows.
    engine = ToneEngine(gate=gate, bytes_per_char=100)
    batcher = await started(engine, BatchLimits(max_batch_size=8, window_s=0.02, memory_budget_bytes=2500))
    first = await blocked_first_batch(engine, batcher)
    tickets = batcher.submit_many([work(f"item {i:05d}") for i in range(5)], priority=0)
    gate.set()
    await asyncio.gather(first.result(), *(t.result() for t in tickets))
    assert [len(b) for b in engine.batches[1:]] == [2, 2, 1]
    assert batcher.stats.split_for_memory >= 2
    await batcher.drain()


async def test_request_too_large_alone_is_refused_with_the_reason():
    batcher = await started(ToneEngine(bytes_per_char=100), BatchLimits(memory_budget_bytes=1000))
    with pytest.raises(TooLarge, match="MiB on its own"):
        batcher.submit_many([work("x" * 50)], priority=0)
    await batcher.drain()


async def test_full_queue_refuses_at_once_and_recovers():
    gate = threading.Event()
    engine = ToneEngine(gate=gate)
    batcher = await started(engine, max_queue_size=3)
    first = await blocked_first_batch(engine, batcher)
    queued = batcher.submit_many([work("a"), work("b"), work("c")], priority=0)
    with pytest.raises(Overloaded, match="queue is full"):
        batcher.submit_many([work("d")], priority=0)
    gate.set()
    await asyncio.gather(first.result(), *(t.result() for t in queued))
    later = batcher.submit_many([work("e")], priority=0)[0]
    await later.result()
    await batcher.drain()


async def test_expired_work_never_runs():
    gate = threading.Event()
    engine = ToneEngine(gate=gate)
    batcher = await started(engine)
    first = await blocked_first_batch(engine, batcher)
    doomed = batcher.submit_many([work("too late")], priority=0, deadline=time.monotonic() + 0.05)[0]
    with pytest.raises(DeadlineExpired):
        await asyncio.wait_for(doomed.result(), 2)  # fails while the engine is still blocked
    gate.set()
    await first.result()
    assert all("too late" not in b for b in engine.batches)
    assert batcher.stats.expired == 1
    await batcher.drain()


async def test_cancelled_work_leaves_the_queue_and_never_runs():
    gate = threading.Event()
    engine = ToneEngine(gate=gate)
    batcher = await started(engine)
    first = await blocked_first_batch(engine, batcher)
    keep, drop = batcher.submit_many([work("keep"), work("drop")], priority=0)
    drop.cancel()
    assert batcher.queue_depth == 1
    gate.set()
    await asyncio.gather(first.result(), keep.result())
    assert all("drop" not in b for b in engine.batches)
    await batcher.drain()


async def test_out_of_memory_halves_the_batch_and_loses_nothing():
    gate = threading.Event()
    engine = ToneEngine(gate=gate, oom_above=2)
    batcher = await started(engine, BatchLimits(max_batch_size=8, window_s=0.02, memory_budget_bytes=10**9))
    first = await blocked_first_batch(engine, batcher)
    tickets = batcher.submit_many([work(f"row {i}") for i in range(8)], priority=0)
    gate.set()
    results = await asyncio.gather(first.result(), *(t.result() for t in tickets))
    assert len(results) == 9
    assert [len(b) for b in engine.oom_batches] == [8, 4, 4]
    assert [len(b) for b in engine.batches[1:]] == [2, 2, 2, 2]
    assert batcher.stats.oom_retries == 3
    await batcher.drain()


async def test_a_failing_item_fails_alone_and_its_neighbours_succeed():
    gate = threading.Event()
    engine = ToneEngine(gate=gate, fail_on="bad")
    batcher = await started(engine)
    first = await blocked_first_batch(engine, batcher)
    good1, bad, good2 = batcher.submit_many([work("good 1"), work("bad one"), work("good 2")], priority=0)
    gate.set()
    await first.result()
    assert len((await good1.result()).samples) > 0
    assert len((await good2.result()).samples) > 0
    with pytest.raises(EngineFailure, match="boom"):
        await bad.result()
    assert engine.batches[1] == ["good 1", "bad one", "good 2"]
    assert sorted(map(tuple, engine.batches[2:])) == [("bad one",), ("good 1",), ("good 2",)]
    await batcher.drain()


async def test_drain_finishes_queued_work_and_refuses_new_work():
    gate = threading.Event()
    engine = ToneEngine(gate=gate)
    batcher = await started(engine)
    first = await blocked_first_batch(engine, batcher)
    queued = batcher.submit_many([work("queued")], priority=0)[0]
    drain = asyncio.ensure_future(batcher.drain(timeout=5))
    await asyncio.sleep(0.02)
    with pytest.raises(ShuttingDown):
        batcher.submit_many([work("new")], priority=0)
    gate.set()
    await drain
    assert (await first.result()) and (await queued.result())


class StepEngine(ToneEngine):
    """A step-wise engine: generates in steps, streams each step, and admits waiting work
    between steps, as a continuous-batching VoxCPM engine will."""

    def __init__(self, steps=5):
        super().__init__()
        self.steps = steps
        self.sizes_per_step: list[int] = []
        self.second_arrived = threading.Event()

    def run_batch(self, batch, session):
        rows = list(batch)
        produced = [[] for _ in rows]
        for step in range(self.steps):
            if step == 1:
                self.second_arrived.wait(5)
            rows += session.admit(4 - len(rows))
            produced += [[] for _ in range(len(rows) - len(produced))]
            self.sizes_per_step.append(len(rows))
            for i, row in enumerate(rows):
                piece = tone(row.text).samples[:100]
                produced[i].append(piece)
                session.emit(i, type(tone(""))(piece, 16000))
            time.sleep(0.01)
        return [type(tone(""))(__import__("numpy").concatenate(p), 16000) for p in produced]


async def test_step_wise_engine_admits_waiting_work_between_steps_and_streams_partials():
    engine = StepEngine()
    batcher = await started(engine)
    first = batcher.submit_many([work("first")], priority=0)[0]
    await wait_until(lambda: batcher.running_batches == 1)
    second = batcher.submit_many([work("second")], priority=0)[0]
    engine.second_arrived.set()
    a, b = await asyncio.gather(first.result(), second.result())
    assert engine.sizes_per_step[0] == 1 and engine.sizes_per_step[-1] == 2
    assert batcher.stats.batches == 1  # the second request joined the running batch
    assert second.timings.batch_size == 2
    assert first.partials.qsize() == engine.steps and second.partials.qsize() >= engine.steps - 1
    await batcher.drain()
