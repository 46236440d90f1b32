"""The batcher with the streaming-aware scheduler, on simulated time: a step-wise engine whose
steps advance an injected clock by what they would cost, so playback, stalls and admission are
exact and the tests take milliseconds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import pytest

from voxbatch_server.batching import Batcher, BatchLimits
from voxbatch_server.domain import EngineAudio
from voxbatch_server.errors import Overloaded

AUDIO = 0.16


class SimClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass(frozen=True, eq=False)
class SimWork:
    name: str
    steps: int


class SimEngine:
    """Step-wise: one step of n rows costs `step_s(n)`, a joining row's prefill `prefill_s`;
    every row gets 0.16 s of audio a step. Arrivals are injected between steps, at simulated times.
    Rows the session says may wait sit the step out (the seam of issue 10 point 3)."""

    def __init__(self, clock, step_s, prefill_s=0.03, arrivals=None, max_rows=8):
        self.clock = clock
        self.step_s = step_s
        self.prefill_s = prefill_s
        self.arrivals = arrivals or (lambda now: None)
        self.max_rows = max_rows
        self.rows_per_step: list[int] = []

    def batch_key(self, payload):
        return "k"

    def memory_cost(self, payloads):
        return len(payloads)  # a byte a row

    def run_batch(self, payloads, session):
        rows = [[w, 0] for w in payloads]
        joined = len(rows)
        while True:
            session._batcher.call_in_loop_and_wait(lambda: None)  # the loop has taken in every emit so far
            self.arrivals(self.clock.t)
            active = [i for i, (w, done) in enumerate(rows) if done < w.steps and not session.cancelled(i)]
            if len(active) < self.max_rows:
                more = session.admit(self.max_rows - len(active))
                rows += [[w, 0] for w in more]
                joined += len(more)
                active += list(range(len(rows) - len(more), len(rows)))
            if not active:
                break
            paused = session.rows_that_may_wait()
            live = len(active)
            active = [i for i in active if i not in paused] or active
            prefill = self.prefill_s * joined
            step = self.step_s(len(active))
            self.clock.t += prefill + step
            self.rows_per_step.append(len(active))
            for i in active:
                rows[i][1] += 1
                session.emit(i, EngineAudio(np.zeros(1, np.float32), 1), AUDIO)
                if rows[i][1] == rows[i][0].steps:
                    session.complete(i, EngineAudio(np.zeros(1, np.float32), 1), len(active))
            session.step(len(active), step, joined, prefill, paused=live - len(active))
            joined = 0
        return [EngineAudio(np.zeros(1, np.float32), 1) for _ in rows]


async def simulate(scheduler, step_s, requests, arrivals_at=None, **limits):
    """Run `requests` [(sentence steps, stream, caller)] (and more injected at simulated times);
    return each request's tickets and the engine."""
    clock = SimClock()
    pending = sorted(arrivals_at or [], key=lambda a: a[0])
    late: list = []

    def arrivals(now):
        while pending and pending[0][0] <= now:
            _, spec = pending.pop(0)
            late.append(batcher.call_in_loop_and_wait(submit, spec))

    engine = SimEngine(clock, step_s, arrivals=arrivals)
    batcher = Batcher(engine, BatchLimits(**{"max_batch_size": 8, "scheduler": scheduler, **limits}), 256, clock=clock)

    def submit(spec):
        steps, stream, caller = spec
        return batcher.submit_many([SimWork(f"s{i}", n) for i, n in enumerate(steps)], 0, stream=stream, caller=caller)

    batcher.start()
    first = [submit(spec) for spec in requests]
    while True:  # late arrivals append to `late` as the simulation runs
        everything = first + late
        await asyncio.wait_for(asyncio.gather(*(t.result() for ts in everything for t in ts)), 10)
        if not pending and len(first + late) == len(everything):
            break
    await batcher.drain()
    return first + late, engine


async def test_a_batch_that_runs_for_long_keeps_taking_rows_within_its_memory_budget():
    # Room for four rows; a request arrives every 0.1 s and runs 0.12 s, so two at most run at
    # once. The budget counts the rows running now: twelve requests later the batch that the
    # first one started still takes rows in (it counted every row that ever ran, and stopped).
    tickets, engine = await simulate(
        "streaming", lambda n: 0.04, [([3], False, "c0")],
        arrivals_at=[(0.1 * i, ([3], False, f"c{i}")) for i in range(1, 12)], memory_budget_bytes=4,
    )
    assert {t.timings.batch_id for ts in tickets for t in ts} == {1}


def stalls(tickets):
    return tickets[0]._pending.track.clock.stalls


async def test_two_sentence_stream_stays_ahead_only_with_the_streaming_scheduler():
    # The example: one row runs at RTF 0.8 (0.128 s a step for 0.16 s of audio), two
    # rows together at 0.196 s a step. Greedy runs both sentences in every step: the first
    # advances at the pace of two and its listener hears gaps. The second sentence is needed
    # only once the first has played.
    cost = lambda n: 0.06 + 0.068 * n  # noqa: E731
    greedy, _ = await simulate("greedy", cost, [((30, 30), True, "a")])
    streaming, engine = await simulate("streaming", cost, [((30, 30), True, "a")])
    assert stalls(greedy[0]) > 0
    assert stalls(streaming[0]) == 0
    assert max(engine.rows_per_step) == 1  # the second sentence ran after the first, on time


async def test_new_streams_join_only_while_every_running_stream_stays_ahead():
    # Four rows keep up with playback (0.04 s a row, 0.16 s of audio a step); eight do not.
    cost = lambda n: 0.04 * n  # noqa: E731
    requests = [((25,), True, f"c{i}") for i in range(8)]
    greedy, greedy_engine = await simulate("greedy", cost, requests)
    streaming, engine = await simulate("streaming", cost, requests)
    assert sum(stalls(t) for t in greedy) > 0 and max(greedy_engine.rows_per_step) == 8
    assert sum(stalls(t) for t in streaming) == 0
    assert max(engine.rows_per_step) > 1  # streams still shared steps: batching stayed on


async def test_quick_start_new_request_joins_a_running_batch_at_once_when_it_endangers_nothing():
    cost = lambda n: 0.02 * n  # noqa: E731 - far below real time: room for everyone
    tickets, engine = await simulate(
        "streaming", cost, [((40,), True, "a")], arrivals_at=[(0.3, ((10,), True, "b"))]
    )
    late = tickets[1][0]
    assert late.timings.queue_wait_s < 0.1  # it joined between steps, not after the batch
    assert late.timings.batch_id == tickets[0][0].timings.batch_id


async def test_flooding_caller_hits_its_cap_while_others_get_in():
    cost = lambda n: 0.04 * n  # noqa: E731
    clock = SimClock()
    engine = SimEngine(clock, cost)
    batcher = Batcher(engine, BatchLimits(per_caller_cap=4), 256, clock=clock)
    batcher.start()
    flood = batcher.submit_many([SimWork("f", 5)] * 4, 0, caller="flood")
    with pytest.raises(Overloaded, match="at most 4"):
        batcher.submit_many([SimWork("f", 5)], 0, caller="flood")
    light = batcher.submit_many([SimWork("l", 5)], 0, caller="light")
    await asyncio.wait_for(asyncio.gather(*(t.result() for t in flood + light)), 10)
    await batcher.drain()


async def test_fair_share_lets_a_light_caller_overtake_a_queued_flood():
    cost = lambda n: 0.04 * n  # noqa: E731
    tickets, engine = await simulate(
        "streaming", cost, [((20,) * 20, False, "flood")], arrivals_at=[(0.1, ((20,), False, "light"))],
    )
    flood, light = tickets
    # Eight of the flood's sentences run, twelve queue; the light caller's one, arriving later,
    # goes in the next round ahead of them instead of after all of them.
    waits = sorted(t.timings.queue_wait_s for t in flood)
    assert waits[-1] > waits[8] > 0
    assert light[0].timings.queue_wait_s < waits[-1] - 1.0


def test_background_work_uses_only_spare_capacity():
    # A running stream with little slack: a new interactive stream is held back, and background
    # work, which alone would not endanger the stream, must not take the place it waits for.
    from voxbatch_server.batching.admission import Scheduling
    from voxbatch_server.batching.costmodel import CostModel
    from voxbatch_server.batching.playback import RequestTrack, RowProgress
    from voxbatch_server.batching.policy import Pending

    clock = SimClock()
    costs = CostModel()
    for rows in (1, 2, 3):
        for _ in range(3):
            costs.observe_step("k", rows, 0.05 * rows)
            costs.observe_prefill("k", rows, 0.01)
            costs.observe_finish("k", rows, 0.0)
        costs.observe_row("k", 30)
        costs.observe_audio("k", AUDIO)
    scheduling = Scheduling(BatchLimits(), costs, clock)
    scheduling.stepwise = True

    def item(seq, priority, stream):
        track = RequestTrack(stream=stream, rows=[RowProgress()])
        return Pending(payload=seq, key="k", priority=priority, seq=seq, enqueued_at=0.0, track=track)

    running = item(0, 0, True)
    running.track.emitted(0, 0.0, 0.40)  # 0.4 s of audio delivered at t=0
    clock.t = 0.05  # slack 0.35 s: just above the 0.32 s margin
    interactive, background = item(1, 0, True), item(2, 1, False)
    assert scheduling.admit([running], 1, [interactive, background], 2) == []
    # Later, with the stream far ahead, both fit: interactive first, then background.
    running.track.emitted(0, 0.05, 5.0)
    assert scheduling.admit([running], 2, [interactive, background], 2) == [interactive]
    assert scheduling.admit([running], 2, [background], 2) == [background]


async def test_a_light_caller_next_to_a_flood_runs_within_twice_its_time_alone():
    # Eight rows step at four times one row's cost (a CPU). The flood's seven long rows run when
    # the light caller first sends; then it sends one short request at a time. Protected, its row
    # steps beside few others: the flood's rows, which no listener waits for, sit out steps while
    # it runs (rows_that_may_wait). The flood runs on beside it and finishes.
    cost = lambda n: 0.010 + 0.0075 * n  # noqa: E731

    async def light_latencies(fair_slowdown, flood=True):
        clock = SimClock()
        engine = SimEngine(clock, cost)
        batcher = Batcher(engine, BatchLimits(fair_slowdown=fair_slowdown), 256, clock=clock)
        batcher.start()
        floods = [batcher.submit_many([SimWork("f", 200)], 0, caller="flood") for _ in range(7)] if flood else []
        while flood and clock.t < 0.3:  # the flood runs before the light caller is first seen
            await asyncio.sleep(0.001)
        latencies = []
        for _ in range(4):
            sent = clock.t
            [ticket] = batcher.submit_many([SimWork("l", 20)], 0, caller="light")
            await asyncio.wait_for(ticket.result(), 10)
            latencies.append(clock.t - sent)
        await asyncio.wait_for(asyncio.gather(*(t.result() for ts in floods for t in ts)), 10)
        await batcher.drain()
        return latencies, engine, batcher.scheduler_report()

    alone, _, _ = await light_latencies(1.5, flood=False)
    protected, engine, report = await light_latencies(1.5)
    unprotected, _, _ = await light_latencies(0)
    assert max(protected) <= 2 * max(alone)
    assert max(unprotected) > 2 * max(alone)
    assert report.paused_row_steps > 0  # what the operator sees of it
    assert 2 in engine.rows_per_step and 7 in engine.rows_per_step  # the flood stepped beside the light, and alone


class RowsInTurn:
    """A whole-batch engine that computes its items' rows one after another (Piper on a CPU):
    each row advances the clock 0.02 s; between an item's rows a lighter caller's item may cut in."""

    def __init__(self, clock, arrivals):
        self.clock = clock
        self.arrivals = arrivals

    def batch_key(self, payload):
        return "k"

    def memory_cost(self, payloads):
        return 1

    def run_batch(self, payloads, session):
        payloads, done = list(payloads), EngineAudio(np.zeros(1, np.float32), 1)
        results = [None] * len(payloads)
        for index in range(len(payloads)):
            if results[index] is not None:
                continue
            for row in range(payloads[index].steps):
                if row:
                    self.arrivals(self.clock.t)
                    for work in session.cut_in():
                        payloads.append(work)
                        self.clock.t += 0.02 * work.steps
                        results.append(done)
                        session.complete(len(payloads) - 1, done, len(payloads))
                self.clock.t += 0.02
            results[index] = done
            session.complete(index, done, len(payloads))
        return results


@pytest.mark.parametrize("fair_slowdown", [1.5, 0])
async def test_a_light_callers_item_cuts_in_between_the_rows_of_a_floods_long_item(fair_slowdown):
    clock = SimClock()
    light: list = []

    def arrivals(now):
        if now >= 0.1 and not light:
            light.append(batcher.call_in_loop_and_wait(batcher.submit_many, [SimWork("l", 1)], 0, None, "", None, False, "light"))

    batcher = Batcher(RowsInTurn(clock, arrivals), BatchLimits(max_batch_size=1, fair_slowdown=fair_slowdown), 256, clock=clock)
    batcher.start()
    flood = batcher.submit_many([SimWork("f", 20)] * 5, 0, caller="flood")  # items of 0.4 s each: a backlog
    await asyncio.wait_for(asyncio.gather(*(t.result() for t in flood)), 10)
    await asyncio.wait_for(light[0][0].result(), 10)
    await batcher.drain()
    # Protected, the light item waits for one row of the flood's item (0.02 s), not for the item.
    waited = light[0][0].timings.queue_wait_s
    assert waited < 0.05 if fair_slowdown else waited > 0.25
    assert batcher.scheduler_report().cut_ins == (1 if fair_slowdown else 0)
