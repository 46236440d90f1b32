"""What a step costs, learned online from what engines report.

A step-wise engine reports every generation step (rows, seconds) and what the prefill of rows
joining before it added; the runtime records a whole-batch engine's batch as one step. The model
keeps, per batch key, the most recent samples at each row count and predicts from their
medians, so a stray slow step (a page fault, a neighbour's burst) does not move it. Row counts
never seen are predicted from a weighted line through the medians; with a single row count seen,
from a line through the origin (no batching gain assumed: the conservative guess). Before any
sample, the prior applies: slow on purpose, so a cold server admits little until it has measured.
"""

from __future__ import annotations

import statistics
import threading
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

RECENT = 32  # samples kept per row count: enough for a stable median, short enough to follow drift
TRUSTED = 3  # samples at a row count before its own median is used instead of the fitted line


@dataclass(frozen=True)
class CostPoint:
    rows: int
    seconds: float
    samples: int  # measured samples at this row count (0: predicted)


class Curve:
    """Seconds as a function of rows, from recent samples. Not thread-safe: CostModel locks."""

    def __init__(self) -> None:
        self._samples: dict[int, deque[float]] = {}

    def observe(self, rows: int, seconds: float) -> None:
        if rows >= 1 and seconds >= 0:
            self._samples.setdefault(rows, deque(maxlen=RECENT)).append(seconds)

    @property
    def count(self) -> int:
        return sum(len(s) for s in self._samples.values())

    def largest_rows(self) -> int:
        return max(self._samples, default=0)

    def samples_at(self, rows: int) -> int:
        return len(self._samples.get(rows, ()))

    def predict(self, rows: int) -> float | None:
        """Seconds for `rows` rows, or None before any sample."""
        if not self._samples:
            return None
        own = self._samples.get(rows)
        if own is not None and len(own) >= TRUSTED:
            return statistics.median(own)
        points = [(n, statistics.median(s), min(len(s), RECENT)) for n, s in self._samples.items()]
        if len(points) == 1:
            n, t, _ = points[0]
            return t * rows / n
        intercept, slope = _weighted_line(points)
        return max(intercept + slope * rows, 0.0)


def _weighted_line(points: list[tuple[int, float, int]]) -> tuple[float, float]:
    """Least squares t = a + b*n, weighted by sample counts; b >= 0 (more rows never cost less)."""
    total = sum(w for _, _, w in points)
    mean_n = sum(n * w for n, _, w in points) / total
    mean_t = sum(t * w for _, t, w in points) / total
    spread = sum(w * (n - mean_n) ** 2 for n, _, w in points)
    slope = max(sum(w * (n - mean_n) * (t - mean_t) for n, t, w in points) / spread, 0.0)
    return mean_t - slope * mean_n, slope


class CostModel:
    """Step and prefill costs per batch key, and what a row yields (its length in steps, the
    audio one step gives a streaming row). Thread-safe: workers observe, the loop predicts."""

    def __init__(
        self, prior_step_s: float = 0.25, prior_prefill_steps: float = 2.0, prior_finish_steps: float = 4.0,
        prior_row_steps: float = 50,
    ) -> None:
        self.prior_step_s = prior_step_s  # per row: as if batching gained nothing
        self.prior_prefill_steps = prior_prefill_steps  # a joining row's prefill, in steps of its size
        self.prior_finish_steps = prior_finish_steps  # finishing a row (its final decode), likewise
        self.prior_row_steps = prior_row_steps  # a row's length before any finished: long, so overlaps look long
        self._steps: dict[Hashable, Curve] = {}
        self._prefills: dict[Hashable, Curve] = {}
        self._finishes: dict[Hashable, Curve] = {}
        self._row_steps: dict[Hashable, deque[float]] = {}
        self._audio_per_step: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def observe_finish(self, key: Hashable, rows: int, seconds: float) -> None:
        with self._lock:
            self._finishes.setdefault(key, Curve()).observe(rows, seconds)

    def observe_row(self, key: Hashable, steps: int) -> None:
        """A row finished after `steps` steps."""
        with self._lock:
            self._row_steps.setdefault(key, deque(maxlen=RECENT)).append(float(steps))

    def observe_audio(self, key: Hashable, seconds: float) -> None:
        """One step gave a streaming row `seconds` of audio."""
        if seconds > 0:
            with self._lock:
                self._audio_per_step.setdefault(key, deque(maxlen=RECENT)).append(seconds)

    def row_steps(self, key: Hashable) -> float:
        with self._lock:
            recent = self._row_steps.get(key)
            return statistics.median(recent) if recent else self.prior_row_steps

    def audio_per_step(self, key: Hashable) -> float:
        """Audio seconds one step gives a streaming row; 0 before any was measured (conservative:
        a stream is then assumed to gain nothing per step)."""
        with self._lock:
            recent = self._audio_per_step.get(key)
            return statistics.median(recent) if recent else 0.0

    def observe_step(self, key: Hashable, rows: int, seconds: float) -> None:
        with self._lock:
            self._steps.setdefault(key, Curve()).observe(rows, seconds)

    def observe_prefill(self, key: Hashable, rows: int, seconds: float) -> None:
        with self._lock:
            self._prefills.setdefault(key, Curve()).observe(rows, seconds)

    def step_s(self, key: Hashable, rows: int) -> float:
        """Predicted seconds of one step (or one whole batch) of `rows` rows."""
        seconds = self._predict(self._steps, key, rows)
        return self.prior_step_s * rows if seconds is None else seconds

    def prefill_s(self, key: Hashable, rows: int) -> float:
        """Predicted seconds that the prefill of `rows` joining rows adds to the step they join."""
        seconds = self._predict(self._prefills, key, rows)
        return self.prior_prefill_steps * self.step_s(key, rows) if seconds is None else seconds

    def finish_s(self, key: Hashable, rows: int) -> float:
        """Predicted seconds that finishing `rows` rows (in one step) adds to it."""
        seconds = self._predict(self._finishes, key, rows)
        return self.prior_finish_steps * self.step_s(key, rows) if seconds is None else seconds

    def _predict(self, curves: dict[Hashable, Curve], key: Hashable, rows: int) -> float | None:
        if rows <= 0:
            return 0.0
        with self._lock:
            curve = curves.get(key)
            return curve.predict(rows) if curve is not None else None

    def measured_rows(self, key: Hashable) -> int:
        """The largest row count whose step cost was measured (0: none). Beyond it the cost is
        extrapolated, so the scheduler grows a batch one row past it at a time: a wrong guess
        then costs one row's worth, not a batch's."""
        with self._lock:
            curve = self._steps.get(key)
            return 0 if curve is None else curve.largest_rows()

    def samples(self, key: Hashable) -> int:
        with self._lock:
            curve = self._steps.get(key)
            return 0 if curve is None else curve.count

    def keys(self) -> list[Hashable]:
        with self._lock:
            return list(self._steps)

    def curve(self, key: Hashable, max_rows: int) -> list[CostPoint]:
        """The fitted step cost at 1..max_rows rows, with how many samples back each point."""
        with self._lock:
            curve = self._steps.get(key)
            counts = [0 if curve is None else curve.samples_at(n) for n in range(1, max_rows + 1)]
        return [CostPoint(n, self.step_s(key, n), counts[n - 1]) for n in range(1, max_rows + 1)]

    def busiest_key(self) -> Hashable | None:
        """The key with most samples: what the server mostly runs (for the Server page and metrics)."""
        with self._lock:
            if not self._steps:
                return None
            return max(self._steps, key=lambda k: self._steps[k].count)
