"""Failed attempts per address: after `limit` failures within `window_s`, an address is refused
for the rest of the window without its key being looked at.

With 256-bit keys this is not what stops guessing; it keeps a misconfigured client or a scanner
from flooding the logs and the key checks, and it answers them with when to come back."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_TRACKED = 10_000  # addresses remembered at once; the oldest go first


class FailedAttempts:
    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()  # address -> (window start, failures)

    def blocked_for(self, address: str) -> float:
        """Seconds `address` must wait before trying again; 0 when it may try now."""
        if self.limit <= 0:
            return 0.0
        entry = self._seen.get(address)
        if entry is None:
            return 0.0
        start, failures = entry
        remaining = start + self.window_s - self._clock()
        if remaining <= 0:
            del self._seen[address]
            return 0.0
        return remaining if failures >= self.limit else 0.0

    def failed(self, address: str) -> None:
        now = self._clock()
        start, failures = self._seen.pop(address, (now, 0))
        if now - start >= self.window_s:
            start, failures = now, 0
        self._seen[address] = (start, failures + 1)
        while len(self._seen) > MAX_TRACKED:
            self._seen.popitem(last=False)
