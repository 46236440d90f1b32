"""Pure batching decisions: which waiting items form the next batch, and when.

Everything here is a function of the queue, the time and the limits, so it is tested with an
injected clock and no threads.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any


SCHEDULERS = ("streaming", "greedy")
WINDOW_MODES = ("adaptive", "fixed")


@dataclass(frozen=True)
class BatchLimits:
    """Validated by Settings; repeated here so the policy can be used on its own."""

    max_batch_size: int = 8
    window_s: float = 0.050  # fixed window; the adaptive window's upper bound
    memory_budget_bytes: int = 2 << 30
    workers: int = 1
    scheduler: str = "streaming"  # streaming: admit by slack (scheduler.py); greedy: every compatible row joins
    margin_s: float = 0.32  # slack every started stream keeps (streaming scheduler)
    window_mode: str = "adaptive"
    per_caller_cap: int = 0  # most work items one caller may queue; 0: no cap
    fair_slowdown: float = 1.5  # a lighter caller's step at most this times one row's (protection.py); 0: off


@dataclass(eq=False)
class Pending:
    """A work item waiting in the queue. `payload` is opaque to the batcher."""

    payload: Any
    key: Hashable
    priority: int
    seq: int
    enqueued_at: float
    deadline: float | None = None
    state: Any = field(default=None, repr=False)
    caller: str = ""
    tag: float = 0.0  # fair-share tag within the priority class (fairshare.py)
    rank: int = 1  # urgency within the class, set by the scheduler: -1 light caller, 0 due, 1 normal, 2 not needed yet
    track: Any = field(default=None, repr=False)  # the request's RequestTrack (playback.py)
    row: int = 0  # this item's sentence within its request
    joined_step: int = 0  # the running batch's step count when this item joined it
    joined_at: float | None = None  # when it joined a running batch (None: it started the batch)

    @property
    def order(self) -> tuple[int, int, float, int]:
        return (self.priority, self.rank, self.tag, self.seq)

    def expired(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline


CostFn = Callable[[Sequence[Any]], int]


@dataclass(frozen=True)
class Decision:
    """Either dispatch `batch` now, or wait until `wake_at` (None: until something changes)."""

    batch: tuple[Pending, ...] = ()
    wake_at: float | None = None
    split_for_memory: bool = False


def split_expired(queue: Sequence[Pending], now: float) -> tuple[list[Pending], list[Pending]]:
    """(still waiting, expired). Expired items must never run."""
    alive, expired = [], []
    for item in queue:
        (expired if item.expired(now) else alive).append(item)
    return alive, expired


def fill_batch(
    queue: Sequence[Pending], cost: CostFn, limits: BatchLimits, budget: int | None = None,
    accept: Callable[[list[Pending]], bool] | None = None,
    skip: Callable[[Pending, list[Pending]], bool] | None = None,
) -> tuple[list[Pending], bool]:
    """The batch that starts with `head` (default: the first item in priority order).

    Takes compatible items in priority order while the padded batch stays under the memory
    budget, as the engine estimates it. The batch closes at the first item that would overflow,
    so no item is overtaken by a smaller, later one. Returns (batch, closed_for_memory).
    `accept(batch)` (the streaming scheduler) may close it earlier: at the first refused item;
    `skip(item, batch)` passes over an item (its caller's share) and lets later ones in.
    """
    budget = limits.memory_budget_bytes if budget is None else budget
    ordered = sorted(queue, key=lambda p: p.order)
    if not ordered:
        return [], False
    head = ordered[0]
    if cost([head.payload]) > budget:
        return [], True
    batch = [head]
    for item in ordered:
        if len(batch) >= limits.max_batch_size:
            break
        if item is head or item.key != head.key or (skip is not None and skip(item, batch)):
            continue
        if cost([p.payload for p in (*batch, item)]) > budget:
            return batch, True
        if accept is not None and not accept([*batch, item]):
            break
        batch.append(item)
    return batch, False


def decide(
    queue: Sequence[Pending],
    now: float,
    running: int,
    cost: CostFn,
    limits: BatchLimits,
    in_use_bytes: int = 0,
    accept: Callable[[list[Pending]], bool] | None = None,
    window: Callable[[list[Pending]], float] | None = None,
    skip: Callable[[Pending, list[Pending]], bool] | None = None,
) -> Decision:
    """When to dispatch and what.

    - No free worker, or nothing queued: wait for a change.
    - The engine is idle (no batch running): dispatch at once, whatever has gathered; a lone
      request never waits for company.
    - A batch runs and a worker is free: dispatch when the batch is full, or when its oldest
      item has waited the window; otherwise wait until then.

    The memory budget covers every running batch together: `in_use_bytes` is what the running
    ones were estimated to take. When even the head does not fit beside them, wait for one to end.
    `accept` and `skip` shape the batch (see fill_batch); `window(batch)` replaces the fixed window.
    """
    if not queue or running >= limits.workers:
        return Decision()
    batch, split = fill_batch(queue, cost, limits, budget=limits.memory_budget_bytes - in_use_bytes, accept=accept,
                              skip=skip)
    if not batch:
        return Decision()
    if running == 0 or split or len(batch) >= limits.max_batch_size:
        return Decision(batch=tuple(batch), split_for_memory=split)
    due = min(p.enqueued_at for p in batch) + (limits.window_s if window is None else window(batch))
    if now >= due:
        return Decision(batch=tuple(batch))
    return Decision(wake_at=due)


def take_compatible(
    queue: Sequence[Pending],
    key: Hashable,
    running_payloads: Sequence[Any],
    room: int,
    cost: CostFn,
    budget: int,
    skip: Callable[[Pending, list[Pending]], bool] | None = None,
) -> list[Pending]:
    """Items that may join a running batch between steps (continuous batching).

    Same compatibility key, priority order, at most `room` of them, and the grown batch stays
    under the memory budget. `skip(item, joined)` passes over an item (its caller's share), so
    that it takes neither room nor memory from the items behind it.
    """
    joined: list[Pending] = []
    for item in sorted(queue, key=lambda p: p.order):
        if len(joined) >= room:
            break
        if item.key != key or (skip is not None and skip(item, joined)):
            continue
        if cost([*running_payloads, *(p.payload for p in joined), item.payload]) > budget:
            break
        joined.append(item)
    return joined
