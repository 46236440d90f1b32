"""What the batcher counts and reports: read by server info, the metrics and the web UI."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BatchReport:
    """One batch the engine finished, for metrics and the structured log."""

    batch_id: int
    size: int
    compute_s: float
    memory_estimate_bytes: int  # the budgeted estimate of the batch's peak (session.cost: the engine's, corrected)
    memory_budget_bytes: int
    queue_waits_s: tuple[float, ...]  # each item's wait before the batch started
    request_ids: tuple[str, ...]  # the request each item belongs to (one per item, may repeat)
    memory_measured: tuple[int, int] | None = None  # (engine's estimate, measured peak) bytes, when the engine measured

    @classmethod
    def of(cls, session, compute_s: float, budget: int) -> BatchReport:
        """The report of a finished BatchSession (its items' tickets carry waits and request ids)."""
        return cls(
            batch_id=session.batch_id,
            size=session.size,
            compute_s=compute_s,
            memory_estimate_bytes=session.cost,
            memory_budget_bytes=budget,
            queue_waits_s=tuple(item.state.timings.queue_wait_s for item in session.items),
            request_ids=tuple(item.state.request_id for item in session.items),
            memory_measured=getattr(session, "memory_measured", None),
        )

    def log_fields(self) -> dict:
        return {
            "batch_id": self.batch_id,
            "batch_size": self.size,
            "compute_s": round(self.compute_s, 4),
            "memory_estimate_bytes": self.memory_estimate_bytes,
            "memory_budget_bytes": self.memory_budget_bytes,
            "queue_wait_s": round(max(self.queue_waits_s, default=0.0), 4),
            "request_ids": sorted(set(self.request_ids)),
            "outcome": "ok",
            **({"memory_measured_bytes": self.memory_measured[1]} if self.memory_measured else {}),
        }


@dataclass
class BatcherStats:
    """Counters and recent batch figures, for server info, metrics and the web UI."""

    batches: int = 0
    items_run: int = 0
    split_for_memory: int = 0
    oom_retries: int = 0
    isolation_retries: int = 0
    expired: int = 0
    cancelled: int = 0
    rejected_full: int = 0
    recent: deque = field(default_factory=lambda: deque(maxlen=1000))  # (end time, size, seconds)
    steps: deque = field(default_factory=lambda: deque(maxlen=2000))  # (end time, rows, seconds) of each step


@dataclass(frozen=True)
class SchedulerReport:
    """What the scheduler learned and decided, for server info, the metrics and the web UI."""

    rows_admitted: int
    held_back: int
    refused_caller_cap: int
    step_costs: tuple  # CostPoint per row count, for the batch key run most (empty before any step)
    prefill_s: float  # one joining row
    finish_s: float  # one finishing row
    audio_per_step_s: float
    held_for_share: int = 0  # times a heavier caller's waiting row was passed over for lighter callers
    cut_ins: int = 0  # lighter callers' items run between the rows of a whole-batch engine's item
    paused_row_steps: int = 0  # rows that sat a step out (rows_that_may_wait), summed over the steps
