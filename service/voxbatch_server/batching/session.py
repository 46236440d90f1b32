"""What the batcher and a running batch share: the runner protocol engines implement, the
session a running batch gets (the seam for step-wise engines), and callers' tickets."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..domain import WorkTimings
from .admission import BACKLOG_ITEMS
from .policy import Pending

if TYPE_CHECKING:
    from .batcher import Batcher


class BatchRunner(Protocol):
    """What the batcher needs from an engine. Payloads are opaque to the batcher."""

    def batch_key(self, payload: Any) -> Hashable:
        """Payloads with equal keys may share one forward pass."""

    def memory_cost(self, payloads: Sequence[Any]) -> int:
        """Estimated peak bytes of running these payloads as one padded batch."""

    def run_batch(self, payloads: Sequence[Any], session: BatchSession) -> Sequence[Any]:
        """One result per payload, in order; an exception instance in a slot fails that item only.

        Raise EngineOutOfMemory when the whole batch does not fit; any other exception fails
        the batch, after which each item is retried alone.
        """


class BatchSession:
    """Handed to the runner for one batch: the seam for step-wise (continuous) engines.

    A step-wise engine may call `emit` to stream partial output of a row, `cancelled` to drop a
    row whose caller went away, and `admit` between steps to pull compatible waiting work into
    the running batch. The payload list grows by what `admit` returns, and results must cover it.
    It reports every step with `step` (what the scheduler's cost model learns from), and may ask
    `rows_that_may_wait` which rows far ahead of their listeners could sit out the next step.
    """

    def __init__(self, batcher: Batcher, items: list[Pending], batch_id: int, cost: int) -> None:
        self._batcher = batcher
        self.items = items
        self.batch_id = batch_id
        self.cost = cost
        self.started_at = batcher.clock()
        self.steps = 0  # steps the engine reported
        self.memory_measured: tuple[int, int] | None = None  # (estimated, measured) peak bytes, if reported

    @property
    def size(self) -> int:
        return len(self.items)

    @property
    def max_size(self) -> int:
        """The most items a batch may hold (the batcher's max batch size)."""
        return self._batcher.limits.max_batch_size

    def work_waiting(self) -> bool:
        """A cheap, lock-free hint that `admit` may find something."""
        return bool(self._batcher._queue)

    def step(
        self, rows: int, seconds: float, joined: int = 0, joined_s: float = 0.0, left: int = 0, left_s: float = 0.0,
        paused: int = 0,
    ) -> None:
        """One generation step ran `rows` rows in `seconds`; before it, the prefill of `joined`
        rows that joined took `joined_s`, and finishing the `left` rows that ended in it (final
        decoding, say) took `left_s`: both stall the rows still streaming, apart from the step.
        `paused` rows sat the step out (see rows_that_may_wait) and are not among `rows`."""
        key = self.items[0].key
        costs = self._batcher.costs
        self._batcher.scheduling.stepwise = True
        costs.observe_step(key, rows, seconds)
        self._batcher.step_ran(rows, seconds)
        if joined:
            costs.observe_prefill(key, joined, joined_s)
        if left:
            costs.observe_finish(key, left, left_s)
        self.steps += 1
        if paused:
            self._batcher.scheduling.decisions["paused_row_steps"] += paused

    def report_memory(self, estimated_bytes: int, measured_bytes: int) -> None:
        """The engine's estimate of this batch's peak (every row that ran in it) and the peak the
        device measured: the batcher corrects later estimates when measured peaks run above."""
        self.memory_measured = (int(estimated_bytes), int(measured_bytes))
        self._batcher.memory_calibration.observe(estimated_bytes, measured_bytes)

    def emit(self, index: int, partial: Any, duration_s: float | None = None) -> None:
        """Stream a piece of a row's output; `duration_s` is the audio it holds (what keeps the
        row's listener playing), when the engine knows it."""
        item = self.items[index]
        ticket: Ticket = item.state
        ticket.emitted = True
        if duration_s:
            self._batcher.costs.observe_audio(item.key, duration_s)
            self._batcher.call_in_loop(_emitted, self._batcher, item, duration_s)
        self._batcher.call_in_loop(ticket._push_partial, partial)

    def complete(self, index: int, result: Any, batch_size: int) -> None:
        """Hand a finished row's result to its caller now, while the batch runs on (rows that
        joined later must not wait for it); `batch_size` is how many rows it ran among."""
        item = self.items[index]
        ticket: Ticket = item.state
        ticket.completed = True
        ticket.timings.batch_size = batch_size
        ticket.timings.batch_id = self.batch_id
        ticket.timings.compute_s += self._batcher.clock() - (self.started_at if item.joined_at is None else item.joined_at)
        if self.steps:  # the step it finished in is not reported yet
            self._batcher.costs.observe_row(item.key, self.steps - item.joined_step + 1)
        self._batcher.call_in_loop(self._batcher._row_finished, item)
        self._batcher.call_in_loop(resolve, ticket.future, result)

    def rows_that_may_wait(self) -> frozenset[int]:
        """Indices (into `items`) of the rows that could sit out the next step so that rows behind
        their listeners catch up: asked once per step, by engines that can pause a row cheaply
        (the others run every row). A paused row keeps its place and state and loses nothing."""
        return self._batcher.scheduling.rows_that_may_wait(self.items, self.steps)

    def alone(self) -> bool:
        """Whether this batch is expected to run alone: no other batch runs, and no worker is kept
        free for another caller's next request. An engine that shares the machine's cores between
        concurrent batches may give all of them to a batch alone (a cheap read, for every row)."""
        batcher = self._batcher
        if batcher.scheduling.keeping_worker:
            return False
        # (A batch whose rows are all handed over is only returning: it is no company. The
        # tuple is taken in one step under the GIL while the loop may change the set.)
        return not any(s is not self and s.live() for s in tuple(batcher._sessions))

    def live(self) -> bool:
        """Whether some row of this batch is still to be handed over."""
        return any(p.state.open for p in self.items)

    def live_items(self) -> list[Pending]:
        """The rows still to be handed over (those finished or dropped are gone from the batch)."""
        return [p for p in self.items if p.state.open]

    def cancelled(self, index: int) -> bool:
        return self.items[index].state.cancelled

    def cut_in(self) -> list[Any]:
        """For an engine that computes a batch's items one after another: waiting work of a
        lighter caller to run next, between the rows of the item in hand, so that it does not wait
        behind a flooding caller's long item (fair share). Usually empty; the payload list grows
        by what it returns, and the engine hands each over with `complete` when done."""
        # Cheap reads first (no trip to the event loop): cutting in needs the protection on and a
        # caller of this batch with a backlog (it floods), which a closed-loop peer never has.
        batcher = self._batcher
        if not self.work_waiting() or not batcher.scheduling.cuts_in:
            return []
        if not any(batcher.fair.queued(p.caller) > BACKLOG_ITEMS for p in self.items):
            return []
        joined = batcher.call_in_loop_and_wait(batcher._cut_in, self)
        return [p.payload for p in joined]

    def admit(self, room: int) -> list[Any]:
        """Take up to `room` compatible waiting items into this batch (call between steps)."""
        if room <= 0:
            return []
        joined = self._batcher.call_in_loop_and_wait(self._batcher._admit_into, self, room)
        return [p.payload for p in joined]


def _emitted(batcher: Batcher, item: Pending, duration_s: float) -> None:
    item.track.emitted(item.row, batcher.clock(), duration_s)


class Ticket:
    """A caller's handle on one queued work item."""

    def __init__(self, batcher: Batcher, pending: Pending, future: asyncio.Future, request_id: str = "") -> None:
        self._batcher = batcher
        self._pending = pending
        self.future = future
        # A caller that failed on an earlier item of its request never awaits the later ones.
        future.add_done_callback(_mark_retrieved)
        self.request_id = request_id
        self.timings = WorkTimings()
        self.cancelled = False
        self.emitted = False
        self.completed = False  # resolved early by BatchSession.complete
        self.partials: asyncio.Queue = asyncio.Queue()

    @property
    def open(self) -> bool:
        """Still to be handed over: neither resolved early (completed) nor dropped (cancelled)."""
        return not self.completed and not self.cancelled

    def _push_partial(self, partial: Any) -> None:
        self.partials.put_nowait(partial)

    async def result(self) -> Any:
        try:
            return await asyncio.shield(self.future)
        except asyncio.CancelledError:
            self.cancel()
            raise

    def cancel(self) -> None:
        """Leave the queue, or tell a running engine to drop the row; the result is discarded.
        Counted as cancelled, or as expired when the item's deadline has passed."""
        if self.future.done():
            return
        self.cancelled = True
        self._batcher._withdraw(self._pending)
        self.future.cancel()


def _mark_retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def resolve(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def reject(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
