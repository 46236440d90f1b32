"""A listener's playback of a stream, as the scheduler and the response timings see it.

Playback starts when the first chunk arrives. A chunk that arrives after the audio before it has
finished playing is a stall: the listener hears a gap, the player waits for the chunk and plays
on from there (its clock shifts by the gap). Slack is the audio delivered minus the playback time
elapsed: how long the stream could go without a new chunk.

A request's sentences play one after another, so a chunk of sentence k is needed only once the
sentences before it have played: its deadline is later than the ones before it. Sentences may
run at the same time (or out of order); a chunk reaches the listener only once every sentence
before it is complete, which is what `RequestTrack` follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

GAP_S = 1e-6  # below this a "gap" is rounding, not silence


@dataclass
class PlaybackClock:
    start: float | None = None  # when playback began (shifted by the stalls)
    delivered_s: float = 0.0
    stalls: int = 0
    stalled_s: float = 0.0
    last_at: float | None = None  # when the latest chunk arrived

    def deliver(self, now: float, duration_s: float) -> None:
        self.last_at = now
        if self.start is None:
            self.start = now
        else:
            gap = now - (self.start + self.delivered_s)
            if gap > GAP_S:
                self.stalls += 1
                self.stalled_s += gap
                self.start += gap
        self.delivered_s += duration_s

    def slack(self, now: float) -> float | None:
        """Audio left to play at `now`; None before the first chunk."""
        return None if self.start is None else self.start + self.delivered_s - now


@dataclass
class RowProgress:
    """One sentence of a request: the audio its engine emitted so far, and whether it is done."""

    emitted_s: float = 0.0
    done: bool = False


@dataclass
class RequestTrack:
    """One request's sentences and its listener's playback (for streams)."""

    stream: bool
    caller: str = ""
    rows: list[RowProgress] = field(default_factory=list)
    clock: PlaybackClock = field(default_factory=PlaybackClock)
    _head: int = 0  # the first sentence not yet completely delivered
    _head_delivered_s: float = 0.0  # how much of the head sentence was delivered

    @property
    def started(self) -> bool:
        return self.clock.start is not None

    def emitted(self, row: int, now: float, duration_s: float) -> None:
        self.rows[row].emitted_s += duration_s
        self._advance(now)

    def finished(self, row: int, now: float) -> None:
        self.rows[row].done = True
        self._advance(now)

    def _advance(self, now: float) -> None:
        while self._head < len(self.rows):
            head = self.rows[self._head]
            fresh = head.emitted_s - self._head_delivered_s
            if fresh > 0:
                self.clock.deliver(now, fresh)
                self._head_delivered_s = head.emitted_s
            if not head.done:
                return
            self._head += 1
            self._head_delivered_s = 0.0

    def needed_at(self, row: int, expected_row_s: float) -> float | None:
        """When the next chunk of sentence `row` must reach the listener; None while playback
        has not started. Sentences before it that are still running count with what they have
        emitted plus what a typical sentence would still add (`expected_row_s` in all)."""
        if not self.stream or self.clock.start is None:
            return None
        at = self.clock.start + self.clock.delivered_s
        for j in range(self._head, row):
            earlier = self.rows[j]
            at += earlier.emitted_s - (self._head_delivered_s if j == self._head else 0.0)
            if not earlier.done:
                at += max(expected_row_s - earlier.emitted_s, 0.0)
        if row > self._head:
            at += self.rows[row].emitted_s  # emitted, but waiting behind the sentences before it
        return at
