"""Streaming-aware admission: pure functions of row views, the cost model's predictions and time.

Before rows join a running batch (or a new batch forms), the scheduler predicts, chunk by
chunk, how early each row's chunks will reach its listener over the steps it shares with the
grown batch, and admits only while every started stream keeps that slack above the margin
(VoxServe's lesson: admit by slack against the playback clock, not by arrival alone). Chunk j
of a row arrives after the joining rows' prefill, j steps of the grown batch, and the final
decoding of the other rows that finish before it; it is needed once the audio before it has
played:

    slack_j = slack + (j - 1) * audio_per_step - prefill - j * step - finishing_before_j

A stream that has sent nothing yet (fresh) starts its clock at its first chunk, so only its
later chunks must be on time (slack 0 suffices: it has no margin to keep yet). A unary row with
a client deadline gains no audio and must finish before its deadline. Rows without time pressure
do not constrain. A row is followed until it, or the last of the others, finishes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# Rows with this many margins of slack may wait a step while others catch up (the seam of point 3).
FAR_AHEAD_MARGINS = 4.0
LENGTH_SPREAD = 1.25  # how much longer than typical a row is assumed to possibly run


@dataclass(frozen=True)
class RowView:
    """A row as admission sees it."""

    slack_s: float | None  # seconds until its next chunk is needed (streams) or its deadline (unary)
    remaining_steps: float  # expected steps until it finishes
    audio_per_step: float = 0.0  # audio one step gives it (0: a unary row)
    fresh: bool = False  # a stream that has sent nothing: its playback clock starts at its first chunk
    required_s: float = 0.0  # the slack it must keep (the margin for started streams)

    @property
    def pressed(self) -> bool:
        return self.fresh or self.slack_s is not None


@dataclass(frozen=True)
class StepCosts:
    """The cost model for one batch key, as the policy sees it."""

    step_s: Callable[[int], float]  # one step of n rows
    prefill_s: Callable[[int], float]  # what the prefill of n joining rows adds
    finish_s: Callable[[int], float] = lambda n: 0.0  # what finishing n rows adds to their last step


@dataclass(frozen=True)
class Candidate(Generic[T]):
    item: T
    view: RowView
    due: bool = False  # a started stream's next sentence that must start now to stay ahead


def overlaps(rows: Sequence[RowView]) -> list[float]:
    """Steps each row is followed for: until it, or the last of the others, finishes. Lengths are
    typical lengths, and a row may run longer than typical (then rows that end together with it
    by the estimate end before it, and their final decoding delays it): LENGTH_SPREAD covers that."""
    spread = [max(r.remaining_steps * LENGTH_SPREAD, 1.0) for r in rows]
    if len(rows) == 1:
        return spread
    longest = sorted(spread, reverse=True)
    return [min(own, longest[1] if own == longest[0] else longest[0]) for own in spread]


def predicted_slack(
    row: RowView, steps: float, step_s: float, prefill_s: float, finishes: Sequence[float] = (), finish_s: float = 0.0
) -> float:
    """The row's lowest slack over its next `steps` chunks (see the module's formula); `finishes`
    are the steps in which other rows finish, each adding `finish_s` to the chunks after it."""
    if not row.pressed:
        return math.inf
    a = row.audio_per_step
    worst, delay = math.inf, 0.0
    finishing = sorted(f for f in finishes if f < steps)
    for j in range(1, max(int(math.ceil(steps)), 1) + 1):
        while finishing and finishing[0] < j:
            finishing.pop(0)
            delay += finish_s
        if row.fresh:
            if j > 1:
                worst = min(worst, (j - 1) * (a - step_s) - delay)
        else:
            worst = min(worst, row.slack_s + (j - 1) * a - prefill_s - j * step_s - delay)
    if not row.fresh and a == 0:  # a unary row is done once its own result is decoded
        worst -= finish_s
    return worst


def lowest_headroom(
    running: Sequence[RowView], joining: Sequence[RowView], costs: StepCosts, relaxed: bool = False, exempt_last: bool = False,
) -> float:
    """min over pressed rows of (predicted slack - what it must keep); inf when none is pressed.
    `relaxed`: started streams need only stay ahead (0), not keep the margin. `exempt_last`: the
    last joining row (a due sentence) does not constrain its own joining: already late, it gains
    by joining now, and refusing it would leave it to wait for the whole batch."""
    rows = [*running, *joining]
    if not rows:
        return math.inf
    step = costs.step_s(len(rows))
    prefill = costs.prefill_s(len(joining))
    finish = costs.finish_s(1)
    worst = math.inf
    for i, (row, steps) in enumerate(zip(rows, overlaps(rows))):
        if not row.pressed or (exempt_last and i == len(rows) - 1):
            continue
        need = 0.0 if relaxed else row.required_s
        others = [r.remaining_steps for k, r in enumerate(rows) if k != i]
        worst = min(worst, predicted_slack(row, steps, step, prefill, others, finish) - need)
    return worst


def admit(
    running: Sequence[RowView], candidates: Sequence[Candidate[T]], room: int, costs: StepCosts,
    reserved: int | Callable[[T], int] = 0, fits: Callable[[T, list[T]], bool] | None = None,
) -> list[T]:
    """The candidates (already in scheduling order) that may join now: in order, while the
    grown batch keeps every pressed row's slack; the first one refused stops the scan, so no
    later (less urgent) one overtakes it. A due candidate may spend the margins of others, never
    make them stall. `reserved` places (for a candidate: a number, or what it returns) are kept
    for the next sentences of started streams that are not due yet: only due candidates may take
    them. A candidate that `fits(item, joined)` refuses (its caller's share) is skipped, and later
    ones, of other callers, may overtake it; a due one is never refused so. The first row of an
    empty batch is always taken: nothing can be protected."""
    joined: list[Candidate[T]] = []
    for candidate in candidates:
        if len(joined) >= room:
            break
        if not candidate.due:
            keep = reserved(candidate.item) if callable(reserved) else reserved
            if len(joined) >= room - keep:
                continue
            if fits is not None and not fits(candidate.item, [c.item for c in joined]):
                continue
        views = [c.view for c in (*joined, candidate)]
        if running or joined:
            if lowest_headroom(running, views, costs, relaxed=candidate.due, exempt_last=candidate.due) < 0:
                break
        joined.append(candidate)
    return [c.item for c in joined]


def may_wait(rows: Sequence[RowView], margin_s: float, step_s: float | None = None) -> list[bool]:
    """Which rows may sit out a step (where the engine can do so cheaply): while some started
    stream is behind, rows far ahead of theirs (or with no time pressure) give their share of
    the step to those behind. Behind: short of the margin and, when the step's cost `step_s` is
    known, losing ground (a step costs at least the audio it gives) or running dry before the
    next step ends. A stream that is still building its margin on steps cheaper than its audio
    gains on every step: pausing others then would only cost batching."""

    def behind(r: RowView) -> bool:
        if r.slack_s is None or r.fresh or r.slack_s >= margin_s:
            return False
        return step_s is None or step_s >= r.audio_per_step or r.slack_s < step_s

    if not any(behind(r) for r in rows):
        return [False] * len(rows)
    return [
        (not r.pressed) or (r.slack_s is not None and not r.fresh and r.slack_s > FAR_AHEAD_MARGINS * margin_s)
        for r in rows
    ]


def arrival_rate(times: Sequence[float], now: float, horizon_s: float = 10.0) -> float:
    """Work items per second over the last `horizon_s` (0 with fewer than two arrivals)."""
    recent = [t for t in times if now - t <= horizon_s]
    if len(recent) < 2:
        return 0.0
    return (len(recent) - 1) / max(now - recent[0], 1e-3)


def adaptive_window(rate: float, queued: int, max_batch: int, step_s: Callable[[int], float], low_s: float, high_s: float) -> float:
    """How long a batch that could start now waits for company (BentoML's lesson: derive the
    window from measured cost). A row arriving during the wait joins for its marginal cost
    instead of running later at a batch of its own; the wait delays each queued row. Wait only
    when the expected saving beats that delay, and then until the batch is expected to fill."""
    if queued >= max_batch or rate <= 0:
        return low_s
    saving = step_s(1) - (step_s(queued + 1) - step_s(queued))  # per row that joins
    if rate * saving <= queued:
        return low_s
    return min(max((max_batch - queued) / rate, low_s), high_s)
