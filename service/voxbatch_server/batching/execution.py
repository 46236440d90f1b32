"""The batcher's execution side, run in its worker threads: running a batch through the engine,
recording what it cost, handing results over, and retrying after a failure (in halves after
running out of memory, item by item after any other error). A mixin of Batcher, which owns the
state it uses."""

from __future__ import annotations

import logging
import time

from ..errors import EngineFailure, EngineOutOfMemory, TooLarge, VoxbatchError
from .policy import Pending
from .session import BatchSession, describe, resolve
from .stats import BatchReport

log = logging.getLogger("voxbatch_server.batching.batcher")  # one logger name for the batcher's lines


class Execution:
    def _run(self, session: BatchSession) -> None:
        for item in session.items:
            item.state.timings.queue_wait_s = session.started_at - item.enqueued_at
        self._run_group(session)

    def _run_group(self, session: BatchSession) -> None:
        items = session.live_items()
        if not items or self._stopped:
            return
        session.items = items
        started = time.perf_counter()
        try:
            results = self.runner.run_batch([p.payload for p in items], session)
            if len(results) != len(session.items):
                raise RuntimeError(f"engine returned {len(results)} results for {len(session.items)} items")
        except EngineOutOfMemory:
            self._retry_halves(session)
            return
        except Exception as exc:  # noqa: BLE001 - any engine failure is isolated below
            self._retry_alone(session, exc)
            return
        elapsed = time.perf_counter() - started
        size = len(session.items)
        if session.steps == 0:  # a whole-batch engine: the batch is its step
            self.scheduling.stepwise = False
            self.costs.observe_step(session.items[0].key, size, elapsed)
            self.step_ran(size, elapsed)
        self.stats.batches += 1
        self.stats.items_run += size
        self.stats.recent.append((time.time(), size, elapsed))
        report = BatchReport.of(session, elapsed, self.limits.memory_budget_bytes)
        log.info("batch %d ran %d items in %.3fs", session.batch_id, size, elapsed, extra=report.log_fields())
        if self.on_batch is not None:
            self.on_batch(report)
        for item, result in zip(session.items, results):
            if item.state.completed:
                continue
            item.state.timings.batch_size = size
            item.state.timings.batch_id = session.batch_id
            item.state.timings.compute_s += elapsed
            if isinstance(result, BaseException):
                self._fail(item, result if isinstance(result, VoxbatchError) else EngineFailure(describe(result)))
            else:
                self.call_in_loop(self._row_finished, item)
                self.call_in_loop(resolve, item.state.future, result)

    def _row_finished(self, item: Pending) -> None:
        item.track.finished(item.row, self.clock())
        self.scheduling.touch(item)  # its caller stays active a moment: its next request is likely near
        self._changed.set()  # a later sentence of the request may now be due

    def _sub_session(self, parent: BatchSession, items: list[Pending]) -> BatchSession:
        sub = BatchSession(self, items, parent.batch_id, parent.cost)
        sub.started_at = parent.started_at
        return sub

    def _retry_halves(self, session: BatchSession) -> None:
        items = session.items
        if len(items) == 1:
            self._fail(items[0], TooLarge("the engine ran out of memory on this request even when it ran alone"))
            return
        self.stats.oom_retries += 1
        log.warning(
            "batch %d of %d items ran out of memory; retrying in halves", session.batch_id, len(items),
            extra={"batch_id": session.batch_id, "batch_size": len(items), "memory_estimate_bytes": session.cost,
                   "outcome": "out_of_memory"},
        )
        middle = len(items) // 2
        for half in (items[:middle], items[middle:]):
            self._run_group(self._sub_session(session, half))

    def _retry_alone(self, session: BatchSession, exc: Exception) -> None:
        items = session.items
        if len(items) == 1:
            log.error("batch %d: item failed: %s", session.batch_id, describe(exc), exc_info=exc)
            self._fail(items[0], exc if isinstance(exc, VoxbatchError) else EngineFailure(describe(exc)))
            return
        self.stats.isolation_retries += 1
        log.warning(
            "batch %d of %d items failed (%s); retrying each alone", session.batch_id, len(items), describe(exc),
            extra={"batch_id": session.batch_id, "batch_size": len(items), "outcome": "engine_failure"},
        )
        for item in items:
            if item.state.emitted:
                # Audio of this item already reached its caller; running it again would repeat it.
                self._fail(item, EngineFailure(f"the engine failed mid-stream: {describe(exc)}"))
            else:
                self._run_group(self._sub_session(session, [item]))

