"""The batcher's scheduling state: it turns queued and running items into the views the pure
policy (scheduler.py) decides on, with the cost model's predictions and the batcher's clock.

Runs on the event loop (ranking, admission, new batches); `rows_that_may_wait` is read from
the engine's worker thread and only reads.
"""

from __future__ import annotations

import logging
import math
from collections import Counter, deque
from collections.abc import Callable, Hashable, Sequence

from . import scheduler
from .costmodel import CostModel
from .policy import BatchLimits, Pending
from .protection import CallerActivity, Protection, light_limit
from .scheduler import Candidate, RowView, StepCosts

MIN_WINDOW_S = 0.010
BACKLOG_ITEMS = 3  # a stream's first three items are its ramp (text.group_sentences): more queued is a backlog
log = logging.getLogger(__name__)


def started_streams(waiting: Sequence[Pending], key: Hashable) -> dict[int, str]:
    """Started streams of `key` whose next sentence waits and is not due yet: id(track) -> caller."""
    return {
        id(p.track): p.caller for p in waiting
        if p.key == key and p.rank != 0 and p.track is not None and p.track.stream and p.track.started
    }


def flooding(queued: Counter) -> bool:
    """Whether one caller floods: it has a backlog and holds most of the queued items. Under an
    overload shared by many callers (an open loop) each holds a few, and none is passed over."""
    top = max(queued.values(), default=0)
    return top > BACKLOG_ITEMS and 2 * top > sum(queued.values())


class Scheduling:
    def __init__(self, limits: BatchLimits, costs: CostModel, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.costs = costs
        self.clock = clock
        self.streaming = limits.scheduler == "streaming"
        # Whether the engine reports steps (rows can join between them); None until a batch ran.
        # Unknown counts as step-wise: the cautious choice for a cold server's first batch.
        self.stepwise: bool | None = None
        self.arrivals: deque[float] = deque(maxlen=128)
        self.decisions: Counter[str] = Counter()  # admission outcomes, for the metrics
        self.activity = CallerActivity()  # read and written on the event loop only
        # A worker is kept free for a lighter caller (last_worker): read by engines (BatchSession.alone).
        self.keeping_worker = False

    def touch(self, item: Pending) -> None:
        """The item's caller has work now (queued, or a row just finished)."""
        self.activity.touch(item.key, item.caller, item.priority, self.clock())

    def protection(
        self, key: Hashable, running: Sequence[Pending], waiting: Sequence[Pending], now: float, streams: dict[int, str],
    ) -> Protection | None:
        """Light callers' protection for a decision on `key` (protection.py); None when it is off."""
        if not self.streaming or self.limits.fair_slowdown <= 0:
            return None
        recent = self.activity.recent(key, now)
        return Protection.of(running, waiting, key, recent, self._light_limit(key), Counter(streams.values()))

    def _light_limit(self, key: Hashable) -> int:
        return light_limit(lambda n: self.costs.step_s(key, n), self.limits.max_batch_size, self.limits.fair_slowdown)

    def step_costs(self, key: Hashable) -> StepCosts:
        costs = self.costs
        return StepCosts(lambda n: costs.step_s(key, n), lambda n: costs.prefill_s(key, n), lambda n: costs.finish_s(key, n))

    # -- views ------------------------------------------------------------------------------

    def view(self, item: Pending, now: float, steps_done: int = 0) -> RowView:
        key = item.key
        row_steps = self.costs.row_steps(key)
        remaining = max(row_steps - steps_done, 1.0)
        track = item.track
        if track is not None and track.stream:
            audio = self.costs.audio_per_step(key)
            needed = track.needed_at(item.row, row_steps * audio)
            if needed is not None:
                # A stream keeps the margin once it has it; one still building it (just started)
                # may dip by half a step's audio, never stall: new requests then start sooner.
                slack = needed - now
                required = min(self.limits.margin_s, max(slack - audio / 2, 0.0))
                return RowView(slack, remaining, audio, required_s=required)
            first_open = next((i for i, r in enumerate(track.rows) if not r.done), 0)
            return RowView(None, remaining, audio, fresh=item.row == first_open)
        if item.deadline is not None:
            return RowView(item.deadline - now, remaining)
        return RowView(None, remaining)

    def running_views(self, items: Sequence[Pending], steps: int, now: float) -> list[RowView]:
        return [self.view(p, now, steps - p.joined_step) for p in items]

    # -- ordering ---------------------------------------------------------------------------

    def rank(self, queue: Sequence[Pending], running_rows: int, now: float) -> None:
        """Urgency within each priority class: 0 for a started stream's sentence that must start
        now to stay ahead (or a unary request whose deadline is near), 2 for a later sentence not
        needed yet, 1 for the rest (new requests: the quick start); -1 for a light caller's
        request beside a flood on a whole-batch engine. Greedy keeps arrival order."""
        if not self.streaming:
            return
        spare: dict[int, float] = {}  # per class: the least a due sentence could still wait
        for item in queue:
            view = self.view(item, now)
            if view.fresh or view.slack_s is None:
                later = item.track is not None and item.track.stream and not view.fresh
                item.rank = 2 if later else 1
                continue
            lead = self._lead(item, view, running_rows)
            item.rank = 0 if view.slack_s <= self.limits.margin_s + lead else (2 if item.track.stream else 1)
            if item.rank == 0:
                spare[item.priority] = min(spare.get(item.priority, math.inf), view.slack_s - lead)
        if self.limits.fair_slowdown > 0 and self.stepwise is False:
            self._rank_light_callers(queue, spare)

    def _rank_light_callers(self, queue: Sequence[Pending], spare: dict[int, float]) -> None:
        """For a whole-batch engine (its batches take no rows in between): a new request of a
        caller with nothing else queued goes first (-1) while another caller of its class floods
        (a backlog, and most of the class's queued items). Else a flood's sentences that fall
        due one after another keep it waiting, however fair the order among new requests. Only
        while every due sentence can wait for all such requests and keep half the margin: they
        spend the margin, never make a started stream stall. (A step-wise engine takes a light
        caller's row in between steps: the protection covers it there.)"""
        classes: dict[int, Counter[str]] = {}
        for p in queue:
            classes.setdefault(p.priority, Counter())[p.caller] += 1
        flooded = {priority for priority, counts in classes.items() if flooding(counts)}
        light = [p for p in queue if p.rank == 1 and p.priority in flooded and classes[p.priority][p.caller] == 1]
        ahead: Counter[int] = Counter()
        for item in sorted(light, key=lambda p: p.order):
            ahead[item.priority] += 1
            if ahead[item.priority] * self.costs.step_s(item.key, 1) <= spare.get(item.priority, math.inf) - self.limits.margin_s / 2:
                item.rank = -1

    def _lead(self, item: Pending, view: RowView, running_rows: int) -> float:
        """How long before it is needed a waiting row must be started."""
        costs, key = self.costs, item.key
        if self.stepwise is False:  # a whole-batch engine: a running batch may finish first, then its own
            return costs.step_s(key, self.limits.max_batch_size) + costs.step_s(key, 1)
        if view.audio_per_step == 0:  # a unary row: its whole length must fit before the deadline
            return costs.prefill_s(key, 1) + view.remaining_steps * costs.step_s(key, running_rows + 1)
        return costs.prefill_s(key, 1) + costs.step_s(key, running_rows + 1)

    # -- decisions --------------------------------------------------------------------------

    def admit(
        self, running: Sequence[Pending], steps: int, feasible: Sequence[Pending], room: int, waiting: Sequence[Pending] = ()
    ) -> list[Pending]:
        """Which of `feasible` (compatible, within memory, in order) join the running batch now.
        `waiting` is the whole queue: a started stream whose next sentence waits keeps a place
        for it, so new work cannot take the last places the stream will need to stay ahead."""
        if not self.streaming or not feasible:
            return list(feasible[:room])
        if self.stepwise:  # (an engine that admits without reporting steps leaves nothing to measure)
            room = min(room, self.costs.measured_rows(feasible[0].key) + 1 - len(running))
            if room <= 0:
                return []
        now = self.clock()
        top = min(p.priority for p in feasible)
        # Background work uses only spare capacity: none while interactive work is waiting.
        candidates = [
            Candidate(p, self.view(p, now), due=p.rank == 0) for p in feasible if p.priority == top
        ]
        views = self.running_views(running, steps, now)
        key = feasible[0].key  # (running may be empty: every row finished before the engine asked)
        costs = self.step_costs(key)
        streams = started_streams(waiting, key)
        protection = self.protection(key, running, waiting, now, streams)
        held = protection.rows if protection is not None else Counter(p.caller for p in running)

        def reserved(item: Pending) -> int:
            """Places kept for started streams' next sentences bind callers that hold at least as
            many rows as the stream's caller: a lighter caller is not kept out by them."""
            return sum(1 for caller in streams.values() if held[caller] <= held[item.caller])

        fits = self._counted(protection.may_grow) if protection is not None else None
        joined = scheduler.admit(views, candidates, room, costs, reserved, fits)
        self.decisions["admitted"] += len(joined)
        if len(joined) < len(candidates) and len(joined) < room:
            self.decisions["held_back"] += 1
            if log.isEnabledFor(logging.DEBUG):
                slacks = sorted(round(v.slack_s, 3) for v in views if v.slack_s is not None)
                log.debug(
                    "held back %d of %d waiting rows at %d running (step %.3fs now, %.3fs with one more); slacks %s",
                    len(candidates) - len(joined), len(candidates), len(running), costs.step_s(len(running)),
                    costs.step_s(len(running) + 1), slacks[:8],
                )
        return joined

    def accept(self) -> Callable[[list[Pending]], bool] | None:
        """For a new batch: grow it only while its rows keep their slack (step-wise engines)."""
        if not self.streaming or self.stepwise is False:
            return None
        now = self.clock()

        def accept(batch: list[Pending]) -> bool:
            if self.stepwise and len(batch) > self.costs.measured_rows(batch[0].key) + 1:
                return False  # grow past what was measured one row at a time
            views = [self.view(p, now) for p in batch]
            due = batch[-1].rank == 0  # as in admit: a due sentence spends margins, and is not refused for being late
            ok = scheduler.lowest_headroom([], views, self.step_costs(batch[0].key), relaxed=due, exempt_last=due) >= 0
            if not ok:
                self.decisions["held_back"] += 1
            return ok

        return accept

    @property
    def cuts_in(self) -> bool:
        """Whether a lighter caller's item may cut in between the rows of a batch (see cut_in)."""
        return self.streaming and self.limits.fair_slowdown > 0

    def cut_in(self, running: Sequence[Pending], waiting: Sequence[Pending]) -> Pending | None:
        """For an engine that computes a batch's items in turn: the first waiting item (in
        scheduling order) of a caller with nothing in the batch and less work queued than the
        batch's most backlogged caller, to run between the rows of the item in hand. Only while
        the protection is on and that caller floods (see `flooding`), not a peer that came first:
        under an overload shared by many callers, cutting into their items would only delay the
        streams among them."""
        if not self.cuts_in or not running:
            return None
        callers = {p.caller for p in running}
        queued = Counter(p.caller for p in waiting)
        if not flooding(queued) or max(queued, key=queued.__getitem__) not in callers:
            return None
        backlog = max(queued[c] for c in callers)
        key, top = running[0].key, min(p.priority for p in running)
        for item in sorted(waiting, key=lambda p: p.order):
            if item.key == key and item.priority <= top and item.caller not in callers and queued[item.caller] < backlog:
                return item
        return None

    def last_worker(self, running: Sequence[Sequence[Pending]], queue: Sequence[Pending], now: float) -> Callable[[Pending], bool] | None:
        """For the last free worker of two or more (`running`: the live items of each running
        batch): which waiting items may start a batch on it.

        - A sentence not needed yet does not take it while a running row is one somebody waits
          for: the two would share the cores, and that row (a stream's first audio, say) would
          come later.
        - A caller with work running does not take it while another caller of its class (or a
          more urgent one), active within RECENT_S, has less running (with the protection on):
          the worker is kept for that lighter caller's next request, which then starts at once
          instead of after a running row. A started stream's sentence that would stall waiting
          for the running batches takes it all the same.

        None when neither rule holds anything back; `keeping_worker` tells engines whether a
        worker is kept (BatchSession.alone)."""
        self.keeping_worker = False
        if not self.streaming or not running:
            return None
        awaited = any(p.rank < 2 for items in running for p in items)
        heavy = self._heavy_callers(running, queue, now) if self.limits.fair_slowdown > 0 else set()
        self.keeping_worker = bool(heavy)
        if not heavy and not awaited:
            return None

        def may_start(item: Pending) -> bool:
            if item.caller not in heavy:
                return not (awaited and item.rank == 2)
            if item.rank != 0:
                return False
            view = self.view(item, now)
            return view.slack_s is not None and view.slack_s <= self._lead(item, view, 0)

        return may_start

    def _heavy_callers(self, running: Sequence[Sequence[Pending]], queue: Sequence[Pending], now: float) -> set[str]:
        """Callers with more batches running than another caller of their class (or a more urgent
        one) that is active: queued, running, or done within RECENT_S."""
        load: Counter[str] = Counter()
        for items in running:
            load.update({p.caller for p in items})
        active = self.activity.recent(None, now)
        for p in (*queue, *(p for items in running for p in items)):
            active[p.caller] = min(p.priority, active.get(p.caller, p.priority))
        return {
            c for c in load
            if any(d != c and priority <= active[c] and load[d] < load[c] for d, priority in active.items())
        }

    def skip(self, queue: Sequence[Pending], running: Sequence[Pending] = ()) -> Callable[[Pending, list[Pending]], bool] | None:
        """For a new batch (or rows joining `running`): pass over an item whose caller would grow
        past lighter callers' protection, so that the items behind it may take its place."""
        if not self.streaming or self.limits.fair_slowdown <= 0 or not queue:
            return None
        now = self.clock()
        rules: dict[Hashable, Protection | None] = {}

        def skip(item: Pending, batch: list[Pending]) -> bool:
            if item.key not in rules:
                rules[item.key] = self.protection(item.key, running, queue, now, started_streams(queue, item.key))
            rule = rules[item.key]
            return rule is not None and item.rank != 0 and not may_grow(rule)(item, batch)

        counted: dict[int, Callable[[Pending, list[Pending]], bool]] = {}

        def may_grow(rule: Protection) -> Callable[[Pending, list[Pending]], bool]:
            return counted.setdefault(id(rule), self._counted(rule.may_grow))

        return skip

    def _counted(self, may_grow: Callable[[Pending, list[Pending]], bool]) -> Callable[[Pending, list[Pending]], bool]:
        """`may_grow` for one decision, counting the decision once (held_for_share) if it passes
        over any row."""
        passed = False

        def counted(item: Pending, joined: list[Pending]) -> bool:
            nonlocal passed
            ok = may_grow(item, joined)
            if not ok and not passed:
                passed = True
                self.decisions["held_for_share"] += 1
            return ok

        return counted

    def window(self) -> Callable[[list[Pending]], float] | None:
        """The adaptive window (None: the fixed one)."""
        if self.limits.window_mode != "adaptive":
            return None
        now = self.clock()
        rate = scheduler.arrival_rate(self.arrivals, now)

        def window(batch: list[Pending]) -> float:
            key = batch[0].key
            return scheduler.adaptive_window(
                rate, len(batch), self.limits.max_batch_size, lambda n: self.costs.step_s(key, n),
                min(MIN_WINDOW_S, self.limits.window_s), self.limits.window_s,
            )

        return window

    def rows_that_may_wait(self, items: Sequence[Pending], steps: int) -> frozenset[int]:
        """Read from the engine's worker thread once per step; only reads (no caller activity:
        the rows' own callers are enough). Rows far ahead of their listeners while another stream
        is short of the margin (scheduler.may_wait); and while a lighter caller's row runs in a
        batch over the protection limit, a heavier caller's rows that can spare it (no listener,
        or far ahead), most slack first, down to the limit."""
        if not self.streaming:
            return frozenset()
        live = [i for i, p in enumerate(items) if p.state.open]
        rows = [items[i] for i in live]
        views = self.running_views(rows, steps, self.clock())
        if not rows:
            return frozenset()
        key = rows[0].key
        step = self.costs.step_s(key, len(rows))
        waits = {live[j] for j, wait in enumerate(scheduler.may_wait(views, self.limits.margin_s, step)) if wait}
        if self.limits.fair_slowdown > 0:
            limit = self._light_limit(key)
            far = scheduler.FAR_AHEAD_MARGINS * self.limits.margin_s
            spare = sorted(
                ((math.inf if views[j].slack_s is None else views[j].slack_s), j)
                for j in Protection(rows, {}, limit).heavy_rows(rows)
                if not views[j].fresh and (views[j].slack_s is None or (views[j].audio_per_step > 0 and views[j].slack_s > far))
            )
            waits |= {live[j] for _, j in reversed(spare[-(len(rows) - limit):])}
        return frozenset(waits)
