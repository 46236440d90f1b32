"""Measures a batch's peak device memory with torch's CUDA statistics, for the batcher's
estimate correction and the metrics (`BatchSession.report_memory`).

The figure is the peak allocation above what was allocated when the batch began. torch keeps one
peak per device, so with several workers on one GPU the batches' peaks overlap: a batch may see
another's allocations (an overestimate, which only makes the correction more careful) or have
its peak reset by a batch starting beside it (an underestimate, which the correction ignores:
only measured peaks above the estimate change it).
"""

from __future__ import annotations

import torch


class PeakMemory:
    """`with PeakMemory(device) as peak: ...` then `peak.bytes` (None off CUDA)."""

    def __init__(self, device: str) -> None:
        self.device = torch.device(device)
        self.enabled = self.device.type == "cuda" and torch.cuda.is_available()
        self.bytes: int | None = None
        self._base = 0

    def __enter__(self) -> PeakMemory:
        if self.enabled:
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc) -> None:
        if self.enabled and exc[0] is None:
            self.bytes = max(0, torch.cuda.max_memory_allocated(self.device) - self._base)
