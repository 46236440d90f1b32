"""Fair share between callers within a priority class, and a per-caller cap on queued work.

Start-time fair queueing over work items (sentences): each priority class has a virtual clock
that advances as its work is dispatched; a caller's next item is tagged at the later of that
clock and the caller's previous tag, plus one. Ordering by tag serves callers in turn, like
deficit round robin, whatever order they submitted in: a caller that queued a hundred sentences
gets one turn per round, and a caller arriving later starts at the current round, not behind
the flood. A caller alone is served in submission order.
"""

from __future__ import annotations

from collections import Counter

from ..errors import Overloaded


class FairShare:
    def __init__(self, per_caller_cap: int = 0) -> None:
        self.per_caller_cap = per_caller_cap  # most items one caller may have queued; 0: no cap
        self._virtual: dict[int, float] = {}
        self._last: dict[tuple[int, str], float] = {}
        self._queued: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()

    def check(self, caller: str, items: int) -> None:
        """Refuse (RESOURCE_EXHAUSTED) what would put the caller over its cap."""
        cap = self.per_caller_cap
        if cap and self._queued[caller] + items > cap:
            self.refused[caller] += 1
            raise Overloaded(
                f"this caller already has {self._queued[caller]} work items queued and this request needs {items}; "
                f"each caller may queue at most {cap} (sentences); retry when some have finished"
            )

    def tag(self, caller: str, priority: int) -> float:
        """The tag of the caller's next queued item (lower runs first within the class)."""
        start = max(self._virtual.get(priority, 0.0), self._last.get((priority, caller), 0.0))
        self._last[(priority, caller)] = start + 1.0
        self._queued[caller] += 1
        return start

    def left_queue(self, caller: str, priority: int, tag: float, dispatched: bool) -> None:
        """An item left the queue: dispatched (the class's clock advances) or withdrawn."""
        self._queued[caller] -= 1
        if dispatched:
            self._virtual[priority] = max(self._virtual.get(priority, 0.0), tag)
        if self._queued[caller] <= 0:
            del self._queued[caller]
            # Forget an idle caller once its tags are behind the clock: it would start there anyway.
            for key in [k for k in self._last if k[1] == caller and self._last[k] <= self._virtual.get(k[0], 0.0)]:
                del self._last[key]

    def queued(self, caller: str) -> int:
        return self._queued[caller]
