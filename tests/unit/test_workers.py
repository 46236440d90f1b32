"""Several workers with the streaming-aware scheduler: which waiting item may take the last free
worker, and what the engine is told about sharing the cores (BatchSession.alone). A gated engine
holds each batch until the test lets it finish; the callers' activity runs on an injected clock."""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass

import numpy as np

from voxbatch_server.batching import Batcher, BatchLimits
from voxbatch_server.domain import EngineAudio


@dataclass(frozen=True, eq=False)
class Work:
    name: str


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class GatedEngine:
    """A whole-batch engine: each batch reports (its first item, whether it runs alone) and runs
    until the test opens its gate, then hands its rows over."""

    def __init__(self) -> None:
        self.started: queue.Queue = queue.Queue()

    def batch_key(self, payload):
        return "k"

    def memory_cost(self, payloads):
        return 1

    def run_batch(self, payloads, session):
        gate = threading.Event()
        self.started.put((payloads[0].name, session.alone(), gate))
        gate.wait(10)
        done = [EngineAudio(np.zeros(1, np.float32), 1) for _ in payloads]
        # Rows are handed over as they finish, as the engines do: until then the batch counts as
        # company for another that starts (BatchSession.alone), even in the moment before it returns.
        for index, audio in enumerate(done):
            session.complete(index, audio, len(done))
        return done

    async def next(self) -> tuple[str, bool, threading.Event]:
        return await asyncio.get_running_loop().run_in_executor(None, self.started.get, True, 10)

    async def idle_worker(self, batcher: Batcher) -> bool:
        """Whether, once the dispatcher has had its turn, no further batch has started."""
        await asyncio.sleep(0.05)
        return self.started.empty() and batcher.running_batches < batcher.limits.workers


def two_workers(**limits) -> tuple[Batcher, GatedEngine, Clock]:
    clock, engine = Clock(), GatedEngine()
    batcher = Batcher(engine, BatchLimits(max_batch_size=1, workers=2, **limits), 256, clock=clock)
    batcher.start()
    return batcher, engine, clock


def submit(batcher: Batcher, names: list[str], caller: str, stream: bool = False):
    return batcher.submit_many([Work(n) for n in names], 0, stream=stream, caller=caller)


async def test_a_worker_is_kept_for_a_light_caller_while_another_floods():
    batcher, engine, clock = two_workers()
    light = submit(batcher, ["l0"], "light")
    name, alone, gate = await engine.next()
    assert (name, alone) == ("l0", True)  # one request, nobody else: every core is its own
    gate.set()
    await light[0].result()

    flood = submit(batcher, [f"f{i}" for i in range(4)], "flood")
    name, alone, f0 = await engine.next()
    # The light caller finished a moment ago: the second worker waits for its next request, and
    # the flood's row runs on its share of the cores, so that request need not wait for it.
    assert (name, alone) == ("f0", False)
    assert await engine.idle_worker(batcher)
    light = submit(batcher, ["l1"], "light")
    name, _, l1 = await engine.next()
    assert name == "l1"  # at once, beside the flood's row
    l1.set()
    await light[0].result()

    clock.t = 5.0  # the light caller has gone quiet: the flood takes both workers
    f0.set()
    first, _, g1 = await engine.next()
    second, alone, g2 = await engine.next()
    assert (first, second, alone) == ("f1", "f2", False)
    for gate in (g1, g2):
        gate.set()
    name, _, g3 = await engine.next()
    g3.set()
    await asyncio.gather(*(t.result() for t in flood))
    await batcher.drain()


async def test_without_the_protection_the_flood_takes_every_worker():
    batcher, engine, _ = two_workers(fair_slowdown=0)
    light = submit(batcher, ["l0"], "light")
    _, _, gate = await engine.next()
    gate.set()
    await light[0].result()
    flood = submit(batcher, ["f0", "f1"], "flood")
    gates = [(await engine.next())[2], (await engine.next())[2]]
    for gate in gates:
        gate.set()
    await asyncio.gather(*(t.result() for t in flood))
    await batcher.drain()


async def test_a_streams_later_sentence_does_not_share_the_cores_with_its_first():
    batcher, engine, _ = two_workers()
    stream = submit(batcher, ["s0", "s1"], "one", stream=True)
    name, alone, s0 = await engine.next()
    # The listener waits for the first sentence; the second is not needed until it has played.
    assert (name, alone) == ("s0", True)
    assert await engine.idle_worker(batcher)
    s0.set()
    name, alone, s1 = await engine.next()
    assert (name, alone) == ("s1", True)
    s1.set()
    await asyncio.gather(*(t.result() for t in stream))

    # A unary request's sentences are all awaited: they run side by side.
    unary = submit(batcher, ["u0", "u1"], "one")
    first, _, g0 = await engine.next()
    second, alone, g1 = await engine.next()
    assert (first, second, alone) == ("u0", "u1", False)
    g0.set()
    g1.set()
    await asyncio.gather(*(t.result() for t in unary))
    await batcher.drain()


def test_a_floods_sentence_about_to_stall_takes_the_kept_worker():
    from voxbatch_server.batching.admission import Scheduling
    from voxbatch_server.batching.costmodel import CostModel
    from voxbatch_server.batching.playback import RequestTrack, RowProgress
    from voxbatch_server.batching.policy import Pending

    costs = CostModel()
    for _ in range(3):
        costs.observe_step("k", 1, 0.05)
    clock = Clock()
    scheduling = Scheduling(BatchLimits(max_batch_size=1, workers=2), costs, clock)
    scheduling.stepwise = False

    def item(caller: str, seq: int) -> Pending:
        return Pending(payload=caller, key="k", priority=0, seq=seq, enqueued_at=0.0, caller=caller)

    running, later = item("flood", 0), item("flood", 1)
    due = item("flood", 2)
    due.track = RequestTrack(stream=True, caller="flood", rows=[RowProgress(), RowProgress()])
    due.row = 1
    due.track.emitted(0, 0.0, 0.4)  # its listener has 0.4 s of audio to play
    due.track.finished(0, 0.0)
    scheduling.touch(item("light", 3))  # the light caller was active a moment ago
    waiting = [later, due]
    scheduling.rank(waiting, 1, 0.0)
    may_start = scheduling.last_worker([[running]], waiting, 0.0)
    assert scheduling.keeping_worker
    # Due, but 0.4 s ahead: the flood's next sentence can wait for its running row (0.05 s).
    assert due.rank == 0 and not may_start(due) and not may_start(later)
    # Later it would stall behind that row: it takes the worker kept for the light caller.
    clock.t = 0.35
    scheduling.rank(waiting, 1, 0.35)
    assert scheduling.last_worker([[running]], waiting, 0.35)(due)
    # Once the light caller has been quiet a while nothing is kept for it.
    clock.t = 5.0
    scheduling.rank(waiting, 1, 5.0)
    may_start = scheduling.last_worker([[running]], waiting, 5.0)
    assert not scheduling.keeping_worker and may_start(later)
