"""Corrects the engine's memory estimates with the peaks the engine measured.

An engine on a GPU reports, per batch, its estimate of the batch's peak and the peak the device
measured (`BatchSession.report_memory`). When measured peaks run above the estimates, every
batch cost is scaled up by the largest ratio among the recent batches, so the memory-aware split
makes smaller batches before the device runs out; when they stop running above, the factor
returns to 1 as those batches leave the window. Measured peaks below the estimate never lower
it: rows that finish early make a batch's peak smaller than its estimate, which is no reason to
trust the estimate less for the next one.

A single item whose own estimate fits the budget is never refused because of the factor: it may
always run alone, and if it then runs out of memory the batcher's out-of-memory path answers it.
"""

from __future__ import annotations

import math
import threading
from collections import deque

RECENT_BATCHES = 50


class MemoryCalibration:
    def __init__(self, recent: int = RECENT_BATCHES) -> None:
        self._ratios: deque[float] = deque(maxlen=recent)
        self._lock = threading.Lock()
        self.measured_batches = 0

    @property
    def factor(self) -> float:
        with self._lock:
            return max(1.0, max(self._ratios, default=1.0))

    def observe(self, estimated_bytes: int, measured_bytes: int) -> None:
        if estimated_bytes <= 0 or measured_bytes < 0:
            return
        with self._lock:
            self._ratios.append(measured_bytes / estimated_bytes)
            self.measured_batches += 1

    def cost(self, estimate: int, items: int, budget: int) -> int:
        """The batch cost the batcher budgets: the engine's estimate, corrected."""
        corrected = math.ceil(estimate * self.factor)
        if items == 1 and estimate <= budget:
            return min(corrected, budget)
        return corrected
