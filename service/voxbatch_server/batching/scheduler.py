"""Streaming-aware admission: pure functions of row views, the cost model's predictions and time.

Before rows join a running batch (or a new batch forms), the scheduler predicts each row's slack
over the steps it will share with them, and admits only while every started stream keeps its
slack above the margin (VoxServe's lesson: order and admit by slack against the playback clock,
not by arrival alone). A row's slack after the joining rows' prefill and `h` steps of the grown
batch is

    slack - prefill - step - (h - 1) * max(step - audio_per_step, 0)

since each step delivers `audio_per_step` of audio and takes `step`. A stream that has sent
nothing yet (fresh) starts its clock at its first chunk, so it only has to stay ahead from there
(slack `audio_per_step`, never below 0). A unary row with a client deadline is a row that gains
no audio and must finish before its deadline. Rows without time pressure do not constrain.
`h` is the overlap: a row shares the grown batch until it or the last of the others finishes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

# Rows with this many margins of slack may wait a step while others catch up (the seam of point 3).
FAR_AHEAD_MARGINS = 4.0


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


@dataclass(frozen=True)
class Candidate(Generic[T]):
    item: T
    view: RowView
    due: bool = False  # a started stream's next sentence that must start now to stay ahead


def overlaps(rows: Sequence[RowView]) -> list[float]:
    """Steps each row shares with the others: until it, or the last of the others, finishes."""
    if len(rows) == 1:
        return [max(rows[0].remaining_steps, 1.0)]
    longest = sorted((r.remaining_steps for r in rows), reverse=True)
    out = []
    for r in rows:
        other = longest[1] if r.remaining_steps == longest[0] else longest[0]
        out.append(max(min(r.remaining_steps, other), 1.0))
    return out


def predicted_slack(row: RowView, steps: float, step_s: float, prefill_s: float) -> float:
    """The row's lowest slack over the next `steps` steps of `step_s`, after `prefill_s`."""
    decline = max(steps - 1, 0.0) * max(step_s - row.audio_per_step, 0.0)
    if row.fresh:
        return row.audio_per_step - decline
    return (row.slack_s if row.slack_s is not None else math.inf) - prefill_s - step_s - decline


def lowest_headroom(running: Sequence[RowView], joining: Sequence[RowView], costs: StepCosts, relaxed: bool = False) -> float:
    """min over pressed rows of (predicted slack - what it must keep); inf when none is pressed.
    `relaxed`: started streams need only stay ahead (0), not keep the margin."""
    rows = [*running, *joining]
    if not rows:
        return math.inf
    step = costs.step_s(len(rows))
    prefill = costs.prefill_s(len(joining))
    worst = math.inf
    for row, steps in zip(rows, overlaps(rows)):
        if not row.pressed:
            continue
        need = 0.0 if relaxed else row.required_s
        worst = min(worst, predicted_slack(row, steps, step, prefill) - need)
    return worst


def admit(running: Sequence[RowView], candidates: Sequence[Candidate[T]], room: int, costs: StepCosts) -> list[T]:
    """The candidates (already in scheduling order) that may join now: in order, while the
    grown batch keeps every pressed row's slack; the first one refused stops the scan, so no
    later (less urgent) one overtakes it. A due candidate may spend the margins of others, never
    make them stall. The first row of an empty batch is always taken: nothing can be protected."""
    joined: list[Candidate[T]] = []
    for candidate in candidates:
        if len(joined) >= room:
            break
        views = [c.view for c in (*joined, candidate)]
        if running or joined:
            if lowest_headroom(running, views, costs, relaxed=candidate.due) < 0:
                break
        joined.append(candidate)
    return [c.item for c in joined]


def may_wait(rows: Sequence[RowView], margin_s: float) -> list[bool]:
    """Which rows may sit out a step (where the engine can do so cheaply): while some started
    stream is below the margin, rows far ahead of theirs (or with no time pressure) give their
    share of the step to those behind."""
    behind = any(r.slack_s is not None and not r.fresh and r.slack_s < margin_s for r in rows)
    if not behind:
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
