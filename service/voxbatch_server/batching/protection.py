"""Latency protection for light callers: a caller that holds more rows of a batch than another
active caller may grow only while the lighter caller's rows still step within `slowdown` times a
step of one row, by the cost model.

Fair queueing alone orders the queue; it does nothing about rows a flooding caller already holds.
A light caller's row that joins a batch of a flood's eight rows steps at the pace of nine rows:
on a CPU, where a step of eight rows costs about four of one, its request takes four times as long
as alone. So the heavier caller's extra rows are held back (never its started streams' due
sentences: those must not stall), and a place is kept for a lighter caller that was active
moments ago and will likely send again. On a GPU, where a step of eight rows costs about what one
costs, the limit is the whole batch and nothing is held back: the rule costs the flood only the
throughput that the light caller's latency would otherwise pay for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence

from .policy import Pending

RECENT_S = 1.0  # a caller whose work ended this recently is still active: its next request is likely near


def light_limit(step_s: Callable[[int], float], max_rows: int, slowdown: float) -> int:
    """The most rows a batch may hold while a lighter caller runs in it: the largest n whose step
    costs at most `slowdown` times a step of one row (at least 1)."""
    limit, base = 1, step_s(1)
    while limit < max_rows and step_s(limit + 1) <= slowdown * base:
        limit += 1
    return limit


class CallerActivity:
    """When each caller last had work of a batch key and priority class (queued or finished)."""

    def __init__(self) -> None:
        self._last: dict[tuple[Hashable, str], tuple[float, int]] = {}

    def touch(self, key: Hashable, caller: str, priority: int, now: float) -> None:
        self._last[(key, caller)] = (now, priority)

    def recent(self, key: Hashable | None, now: float) -> dict[str, int]:
        """Callers of `key` (None: of any key) active within RECENT_S, with their most urgent
        priority class."""
        stale = [k for k, (at, _) in self._last.items() if now - at > RECENT_S]
        for k in stale:
            del self._last[k]
        active: dict[str, int] = {}
        for (k, caller), (_, priority) in self._last.items():
            if key is None or k == key:
                active[caller] = min(priority, active.get(caller, priority))
        return active


class Protection:
    """The rule for one decision: which callers are active, how many rows each holds, the limit."""

    def __init__(self, running: Sequence[Pending], active: dict[str, int], limit: int, streams: Counter[str] | None = None) -> None:
        self.size = len(running)
        self.rows: Counter[str] = Counter(p.caller for p in running)
        self.active = active  # caller -> its most urgent priority class
        self.limit = limit
        self.streams = streams or Counter()  # caller -> its started streams whose next sentence waits

    @classmethod
    def of(cls, running: Sequence[Pending], waiting: Iterable[Pending], key: Hashable, recent: dict[str, int],
           limit: int, streams: Counter[str] | None = None) -> Protection:
        active = dict(recent)
        for p in (*running, *(w for w in waiting if w.key == key)):
            active[p.caller] = min(p.priority, active.get(p.caller, p.priority))
        return cls(running, active, limit, streams)

    def _lighter(self, rows: Counter[str], caller: str, priority: int) -> list[str]:
        """Active callers of the same or a more urgent class that hold fewer rows than `caller`.
        (Not those with as many: many callers of one row each fill the batch as before.)"""
        mine = rows[caller]
        return [c for c, p in self.active.items() if c != caller and p <= priority and rows[c] < mine]

    def may_grow(self, item: Pending, joined: Sequence[Pending] = ()) -> bool:
        """Whether `item` may join the running rows and `joined`: when its caller holds no more rows
        than any other active caller, or the batch (with a place kept for each lighter caller that
        holds none) stays within the limit."""
        rows = self.rows + Counter(p.caller for p in joined)
        size = self.size + len(joined) + 1
        lighter = self._lighter(rows, item.caller, item.priority)
        if lighter:
            return size + sum(1 for c in lighter if rows[c] == 0) <= self.limit
        # A caller with started streams waiting for their next sentences starts another stream
        # only where those sentences would still fit beside the other callers: else a flood that
        # starts stream after stream later needs all their sentences at once, and they join
        # whatever the limit (a started stream must not stall).
        waiting = self.streams[item.caller]
        fresh = item.track is not None and item.track.stream and not item.track.started
        if fresh and waiting and len(self.active) > 1:
            return size + waiting <= self.limit
        return True

    def heavy_rows(self, live: Sequence[Pending]) -> list[int]:
        """Indices into `live` (the running rows) of rows whose caller holds more rows than another
        caller with a row in `live`, while `live` is over the limit: the rows that could sit out a
        step so that the lighter caller's rows step faster."""
        if len(live) <= self.limit:
            return []
        callers = {p.caller for p in live}
        return [i for i, p in enumerate(live) if any(self.rows[c] < self.rows[p.caller] for c in callers)]
