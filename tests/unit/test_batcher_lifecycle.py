"""The batcher at the edges of a request's life: admission before a shutdown, the end of the grace
period, callers that leave or run out of time while their rows run, and requests too big to queue."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import pytest

from tests.support.engines import ToneEngine, tone
from tests.unit.test_batcher import started, wait_until, work
from voxbatch_server.errors import InvalidInput, ShuttingDown
from voxbatch_server.logs import _request_id, request_context


class UntilCancelled(ToneEngine):
    """A step-wise engine that generates until its rows' callers leave (as VoxCPM checks between steps)."""

    def __init__(self):
        super().__init__()
        self.steps_after_stop = 0
        self.stopped_at: float | None = None

    def run_batch(self, batch, session):
        end = time.monotonic() + 5
        while time.monotonic() < end and not all(session.cancelled(i) for i in range(len(batch))):
            time.sleep(0.01)
        self.stopped_at = time.monotonic()
        return [tone(w.text) for w in batch]


async def test_work_admitted_before_the_shutdown_is_still_queued_and_finished():
    batcher = await started(ToneEngine())
    with batcher.admission() as admission:
        drain = asyncio.ensure_future(batcher.drain(timeout=5))
        await asyncio.sleep(0.05)
        assert not drain.done()  # the drain waits for the request being prepared
        with pytest.raises(ShuttingDown, match="accepts no new work"):
            batcher.submit_many([work("arrived after the signal")], priority=0)
        ticket = batcher.submit_many([work("arrived before the signal")], priority=0, admission=admission)[0]
    assert len((await ticket.result()).samples) > 0
    await drain
    with pytest.raises(ShuttingDown):
        with batcher.admission():
            pass


async def test_past_the_grace_period_unfinished_work_fails_and_nothing_runs_after_the_drain():
    engine = UntilCancelled()
    batcher = await started(engine)
    running = batcher.submit_many([work("running")], priority=0)[0]
    await wait_until(lambda: batcher.running_batches == 1)
    queued = batcher.submit_many([work("queued"), work("queued too")], priority=0)
    started_at = time.monotonic()
    await batcher.drain(timeout=0.2)
    # The running batch was told to drop its row, and the drain waited for the worker to return.
    assert engine.stopped_at is not None and engine.stopped_at - started_at < 2
    assert batcher.running_batches == 0
    for ticket in (running, *queued):
        with pytest.raises(ShuttingDown, match="shut down before finishing this request"):
            await ticket.result()
    assert engine.batches == [] or all("queued" not in t for b in engine.batches for t in b)


async def test_unawaited_failures_of_a_failed_request_are_not_reported_as_never_retrieved():
    loop = asyncio.get_running_loop()
    reported = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context["message"]))
    gate = threading.Event()
    batcher = await started(ToneEngine(gate=gate))
    blocker = batcher.submit_many([work("blocker")], priority=0)[0]
    await wait_until(lambda: batcher.running_batches == 1)
    tickets = batcher.submit_many([work("one"), work("two"), work("three")], priority=0)
    loop.call_later(0.2, gate.set)  # the engine returns after the grace period
    await batcher.drain(timeout=0.05)
    with pytest.raises(ShuttingDown):
        await tickets[0].result()  # the caller stops at its first failure, as the pipeline does
    del tickets, blocker
    gc.collect()
    await asyncio.sleep(0)
    assert not [m for m in reported if "never retrieved" in m]


async def test_rows_dropped_from_a_running_batch_are_counted_as_cancelled_or_expired():
    gate = threading.Event()
    batcher = await started(ToneEngine(gate=gate))
    cancelled = batcher.submit_many([work("left")], priority=0)[0]
    expiring = batcher.submit_many([work("late")], priority=0, deadline=time.monotonic() + 0.05)[0]
    await wait_until(lambda: batcher.running_batches == 1)
    cancelled.cancel()  # running: the engine is told to drop the row
    await asyncio.sleep(0.1)
    expiring.cancel()  # what gRPC does when the client's deadline passes during compute
    assert (batcher.stats.cancelled, batcher.stats.expired) == (1, 1)
    gate.set()
    await batcher.drain(timeout=5)


async def test_a_request_with_more_work_items_than_the_queue_holds_is_invalid_not_overloaded():
    batcher = await started(ToneEngine(), max_queue_size=3)
    with pytest.raises(InvalidInput, match="can never be served"):
        batcher.submit_many([work(f"s{i}") for i in range(4)], priority=0)
    await batcher.drain()


async def test_a_request_context_closed_from_another_context_does_not_raise():
    async def stream():
        with request_context("abc"):
            yield 1
            yield 2

    pieces = stream()
    assert await pieces.__anext__() == 1
    assert _request_id.get() == "abc"
    # The event loop closes abandoned async generators in a task of its own (a copied context).
    await asyncio.create_task(pieces.aclose())
