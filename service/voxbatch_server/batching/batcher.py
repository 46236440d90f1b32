"""The batcher's runtime: a bounded priority queue, one dispatcher task, worker threads.

Admission, expiry and dispatch happen on the event loop; engine calls run in worker threads so
the loop keeps answering health checks and new requests while a batch computes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..domain import deadline_passed
from ..errors import (
    DeadlineExpired,
    InvalidInput,
    Overloaded,
    ShuttingDown,
    TooLarge,
)
from .admission import Scheduling
from .execution import Execution
from .costmodel import CostModel
from .fairshare import FairShare
from .memory_calibration import MemoryCalibration
from .playback import RequestTrack, RowProgress
from .policy import BatchLimits, Pending, decide, split_expired, take_compatible
from .session import BatchRunner, BatchSession, Ticket, reject
from .stats import BatcherStats, BatchReport, SchedulerReport

log = logging.getLogger(__name__)

# Past the grace period, how long to wait for batches already inside the engine to return (they
# were told to drop every row) before the loop closes under them.
WORKER_STOP_S = 30.0
UNFINISHED = "the server shut down before finishing this request; retry it"


class Admission:
    """A request's promise to submit its work: taken when the request arrives, so that work
    accepted before a shutdown began is still queued (and finished) while it drains."""

    def __init__(self) -> None:
        self.open = True


class Batcher(Execution):
    def __init__(
        self,
        runner: BatchRunner,
        limits: BatchLimits,
        max_queue_size: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runner = runner
        self.limits = limits
        self.max_queue_size = max_queue_size
        self.clock = clock
        self.stats = BatcherStats()
        self.costs = CostModel()
        self.scheduling = Scheduling(limits, self.costs, clock)
        self.fair = FairShare(limits.per_caller_cap)
        self.memory_calibration = MemoryCalibration()  # measured peaks correct the engine's estimates
        self.on_batch: Callable[[BatchReport], None] | None = None  # metrics hook, called in a worker thread
        self.on_step: Callable[[int, float], None] | None = None  # (rows, seconds) of each step, likewise
        self._queue: list[Pending] = []
        self._seq = itertools.count()
        self._batch_ids = itertools.count(1)
        self._running = 0
        self._sessions: set[BatchSession] = set()  # the batches inside the engine now
        self._in_use = 0
        self._closing = False
        self._stopped = False  # past the grace period: nothing runs any more
        self._admissions = 0
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="batch")

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._dispatch_forever(), name="batcher-dispatch")

    async def drain(self, timeout: float | None = None) -> None:
        """Refuse new work, finish what is queued, running or admitted, then stop the workers.

        Past `timeout`, every unfinished item fails with ShuttingDown, running batches are told
        to drop their rows, and the workers are waited for, so nothing runs after drain returns.
        """
        self._closing = True
        self._changed.set()
        deadline = None if timeout is None else self.clock() + timeout
        while self._queue or self._running or self._admissions:
            if deadline is not None and self.clock() >= deadline:
                self._abandon()
                break
            await asyncio.sleep(0.01)
        self._stopped = True
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        stop_by = self.clock() + WORKER_STOP_S
        while self._running and self.clock() < stop_by:
            await asyncio.sleep(0.01)
        if self._running:
            log.warning("%d batches were still inside the engine when the server stopped", self._running)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _abandon(self) -> None:
        """The grace period is over: fail everything unfinished and stop running batches."""
        self._stopped = True
        for item in list(self._queue):
            self._leave_queue(item, dispatched=False)
            self._fail(item, ShuttingDown(UNFINISHED))
        for session in self._sessions:
            for item in session.items:
                item.state.cancelled = True  # step-wise engines drop the row at their next step
                self._fail(item, ShuttingDown(UNFINISHED))

    @contextlib.contextmanager
    def admission(self) -> Iterator[Admission]:
        """Held by a request from its arrival until its work is queued (or it fails)."""
        if self._closing:
            raise ShuttingDown("the server is shutting down and accepts no new work")
        admission = Admission()
        self._admissions += 1
        try:
            yield admission
        finally:
            admission.open = False
            self._admissions -= 1

    def step_ran(self, rows: int, seconds: float) -> None:
        self.stats.steps.append((time.time(), rows, seconds))
        if self.on_step is not None:
            self.on_step(rows, seconds)

    def scheduler_report(self) -> SchedulerReport:
        key = self.costs.busiest_key()
        known = key is not None
        return SchedulerReport(
            rows_admitted=self.scheduling.decisions["admitted"],
            held_back=self.scheduling.decisions["held_back"],
            held_for_share=self.scheduling.decisions["held_for_share"],
            cut_ins=self.scheduling.decisions["cut_in"],
            paused_row_steps=self.scheduling.decisions["paused_row_steps"],
            refused_caller_cap=sum(self.fair.refused.values()),
            step_costs=tuple(self.costs.curve(key, self.limits.max_batch_size)) if known else (),
            prefill_s=self.costs.prefill_s(key, 1) if known else 0.0,
            finish_s=self.costs.finish_s(key, 1) if known else 0.0,
            audio_per_step_s=self.costs.audio_per_step(key) if known else 0.0,
        )

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def running_batches(self) -> int:
        return self._running

    @property
    def memory_in_use(self) -> int:
        """Estimated peak bytes of the batches running now (within limits.memory_budget_bytes)."""
        return self._in_use

    # -- admission --------------------------------------------------------------------------

    def submit_many(
        self,
        payloads: Sequence[Any],
        priority: int,
        deadline: float | None = None,
        request_id: str = "",
        admission: Admission | None = None,
        stream: bool = False,
        caller: str = "",
    ) -> list[Ticket]:
        """Queue all payloads of one request (its sentences, in order), or none of them.

        `stream`: the caller plays the audio as it arrives (the scheduler keeps it ahead of its
        playback); `caller` identifies who sent it, for fair share and the per-caller cap;
        `request_id` only labels the logs. While the server drains, only requests admitted
        before it began (`admission`) may submit.
        """
        if self._stopped:
            raise ShuttingDown(UNFINISHED)
        if self._closing and (admission is None or not admission.open):
            raise ShuttingDown("the server is shutting down and accepts no new work")
        if len(payloads) > self.max_queue_size:
            raise InvalidInput(
                f"this request needs {len(payloads)} work items and the queue holds at most "
                f"{self.max_queue_size}, so it can never be served; send a shorter text"
            )
        if len(self._queue) + len(payloads) > self.max_queue_size:
            self.stats.rejected_full += 1
            raise Overloaded(
                f"the queue is full ({len(self._queue)} of {self.max_queue_size} work items waiting, "
                f"this request needs {len(payloads)}); retry later"
            )
        self.fair.check(caller, len(payloads))
        budget = self.limits.memory_budget_bytes
        for payload in payloads:
            need = self.runner.memory_cost([payload])
            if need > budget:
                raise TooLarge(
                    f"this request needs about {need / 2**20:.0f} MiB on its own, over the batch memory "
                    f"budget of {budget / 2**20:.0f} MiB; shorten the text or the reference audio"
                )
        now = self.clock()
        track = RequestTrack(stream, caller, [RowProgress() for _ in payloads])
        tickets = []
        for row, payload in enumerate(payloads):
            pending = Pending(
                payload=payload,
                key=self.runner.batch_key(payload),
                priority=int(priority),
                seq=next(self._seq),
                enqueued_at=now,
                deadline=deadline,
                caller=caller,
                tag=self.fair.tag(caller, int(priority)),
                track=track,
                row=row,
            )
            self.scheduling.arrivals.append(now)
            self.scheduling.touch(pending)
            ticket = Ticket(self, pending, self._loop.create_future(), request_id)
            pending.state = ticket
            self._queue.append(pending)
            tickets.append(ticket)
        self._changed.set()
        return tickets

    def _withdraw(self, pending: Pending) -> None:
        """A caller left: drop its item from the queue (or its row from a running batch) and
        count it as expired when its deadline is what ended the call."""
        if deadline_passed(pending.deadline, self.clock()):
            self.stats.expired += 1
        else:
            self.stats.cancelled += 1
        if pending in self._queue:
            self._leave_queue(pending, dispatched=False)
            self._changed.set()

    def _leave_queue(self, item: Pending, dispatched: bool) -> None:
        self._queue.remove(item)
        self.fair.left_queue(item.caller, item.priority, item.tag, dispatched)

    # -- dispatch ---------------------------------------------------------------------------

    def _cost(self, payloads: Sequence[Any]) -> int:
        return self.memory_calibration.cost(self.runner.memory_cost(payloads), len(payloads), self.limits.memory_budget_bytes)

    async def _dispatch_forever(self) -> None:
        while True:
            self._changed.clear()
            now = self.clock()
            _alive, expired = split_expired(self._queue, now)
            for item in expired:
                self._leave_queue(item, dispatched=False)
                self.stats.expired += 1
                self._fail(item, DeadlineExpired("the request's deadline passed while it waited in the queue"))
            self.scheduling.rank(self._queue, 0, now)
            decision = decide(
                self._startable(now), now, self._running, self._cost, self.limits, self._in_use,
                accept=self.scheduling.accept(), window=self.scheduling.window(), skip=self.scheduling.skip(self._queue),
            )
            if decision.batch:
                self._start_batch(list(decision.batch), split=decision.split_for_memory)
                continue
            wake_at = decision.wake_at
            deadlines = [p.deadline for p in self._queue if p.deadline is not None]
            if deadlines:
                wake_at = min(deadlines) if wake_at is None else min(wake_at, min(deadlines))
            timeout = None if wake_at is None else max(0.0, wake_at - self.clock())
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except TimeoutError:
                pass

    def _startable(self, now: float) -> list[Pending]:
        """The queued items that may start a batch now: all of them, but on the last free worker
        of several only those Scheduling.last_worker lets take it (not a sentence nobody waits for
        beside an awaited row; not a flood's item while the worker is kept for a lighter caller)."""
        if not 0 < self._running == self.limits.workers - 1:
            self.scheduling.keeping_worker = False
            return self._queue
        running = [s.live_items() for s in self._sessions]
        may_start = self.scheduling.last_worker(running, self._queue, now)
        return self._queue if may_start is None else [p for p in self._queue if may_start(p)]

    def _start_batch(self, batch: list[Pending], split: bool) -> None:
        for item in batch:
            self._leave_queue(item, dispatched=True)
        cost = self._cost([p.payload for p in batch])
        self._running += 1
        self._in_use += cost
        if split:
            self.stats.split_for_memory += 1
        session = BatchSession(self, batch, next(self._batch_ids), cost)
        self._sessions.add(session)
        future = self._loop.run_in_executor(self._executor, self._run, session)
        future.add_done_callback(lambda _f: self._batch_done(session))

    def _batch_done(self, session: BatchSession) -> None:
        self._sessions.discard(session)
        self._running -= 1
        self._in_use -= session.cost
        self._changed.set()

    def _admit_into(self, session: BatchSession, room: int) -> list[Pending]:
        if self._stopped:
            return []
        key = session.items[0].key
        others = self._in_use - session.cost
        running = session.live_items()
        now = self.clock()
        self.scheduling.rank(self._queue, len(running), now)
        feasible = take_compatible(
            self._queue,
            key,
            [p.payload for p in running],
            room,
            self._cost,
            self.limits.memory_budget_bytes - others,
            self.scheduling.skip(self._queue, running),
        )
        joined = self.scheduling.admit(running, session.steps, feasible, room, self._queue)
        self._join(session, joined, now)
        return joined

    def _cut_in(self, session: BatchSession) -> list[Pending]:
        """A lighter caller's item to run next in a batch whose items are computed in turn."""
        if self._stopped:
            return []
        running = session.live_items()
        item = self.scheduling.cut_in(running, self._queue)
        if item is None:
            return []
        grown = self._cost([*(p.payload for p in running), item.payload])
        if self._in_use - session.cost + grown > self.limits.memory_budget_bytes:
            return []
        self._join(session, [item], self.clock())
        self.scheduling.decisions["cut_in"] += 1
        return [item]

    def _join(self, session: BatchSession, joined: list[Pending], now: float) -> None:
        for item in joined:
            self._leave_queue(item, dispatched=True)
            item.joined_step = session.steps
            item.joined_at = now
            item.state.timings.queue_wait_s = now - item.enqueued_at
        if joined:
            session.items.extend(joined)
            # The rows running now, not every row that ever ran in the batch: a batch that takes
            # rows in for minutes would otherwise count hundreds, and stop taking any.
            new_cost = self._cost([p.payload for p in session.live_items()])
            self._in_use += new_cost - session.cost
            session.cost = new_cost

    # -- loop plumbing ----------------------------------------------------------------------

    def _fail(self, item: Pending, exc: BaseException) -> None:
        self.call_in_loop(reject, item.state.future, exc)

    def call_in_loop(self, fn: Callable, *args: Any) -> None:
        if self._on_loop():
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def call_in_loop_and_wait(self, fn: Callable, *args: Any) -> Any:
        async def call() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False
