"""What a load run measured: each request as the client saw it (`Outcome`), and the run's
summary (`LoadResult`): throughput, steady-state rates, latency percentiles and streaming
viability. Split from loadgen.py, which offers the load."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.loadgen import LoadSpec


@dataclass
class Outcome:
    """One request as the client saw it. Times are seconds from the run's start."""

    index: int
    streamed: bool
    start: float
    end: float
    code: str
    audio_s: float = 0.0
    queue_wait_s: float = 0.0
    compute_s: float = 0.0  # unary: the server's engine compute for it
    server_s: float = 0.0  # unary: the server's time from receiving it to finishing it
    batch_size: int = 0
    first_audio_s: float | None = None  # streams: from the call to the first chunk
    chunks: int = 0
    viable: bool | None = None  # streams: no chunk arrived after the audio before it had played
    complete: bool = False  # OK with audio; streams: every sentence's chunks, the last marked final
    details: str = ""
    deliveries: list[tuple[float, float]] = field(default_factory=list)  # (when, audio seconds) as it arrived

    @property
    def latency_s(self) -> float:
        return self.end - self.start


@dataclass
class LoadResult:
    spec: LoadSpec
    outcomes: list[Outcome]
    dropped: int  # open loop: arrivals not sent because max_in_flight calls were open
    wall_s: float  # from the first request to the last answer
    batch_sizes: list[int]  # sizes of the batches the server finished during the run

    def steady_rate(self, outcomes: Sequence[Outcome], count: bool = False) -> float:
        """Audio seconds (or requests finished, with `count`) delivered per second while the load
        was offered, past its first second (or tenth): a stream's audio counts chunk by chunk as
        it arrived, a unary request's when it ended. Unlike totals over the whole run divided by
        its length, the drain after the clients stop (a few slow requests, or one that ends just
        after the run) does not move it, and streams count by the chunk, not by the request."""
        low = min(1.0, self.spec.duration_s / 10)
        high = self.spec.duration_s
        if count:
            total = float(sum(low <= o.end < high for o in outcomes))
        else:
            total = sum(seconds for o in outcomes for at, seconds in o.deliveries if low <= at < high)
        return total / (high - low)

    def summary(self) -> dict:
        ok = [o for o in self.outcomes if o.code == "OK"]
        streams = [o for o in ok if o.streamed]
        unary = [o for o in ok if not o.streamed]
        wall = max(self.wall_s, 1e-9)
        items = sum(self.batch_sizes)
        return {
            "load": self.spec.label,
            "sent": len(self.outcomes),
            "ok": len(ok),
            "incomplete": sum(not o.complete for o in ok),
            "errors": dict(Counter(o.code for o in self.outcomes if o.code != "OK")),
            "dropped": self.dropped,
            "wall_s": self.wall_s,
            "requests_per_s": len(ok) / wall,
            "audio_s_per_s": sum(o.audio_s for o in ok) / wall,
            # The goodput: audio seconds of viable streams per second.
            "goodput_s_per_s": sum(o.audio_s for o in streams if o.viable) / wall,
            # The same rates in the steady state (see steady_rate): what the comparisons use.
            "steady_audio_s_per_s": self.steady_rate(ok),
            "steady_goodput_s_per_s": self.steady_rate([o for o in streams if o.viable]),
            "steady_requests_per_s": self.steady_rate(ok, count=True),
            "latency_s": percentiles([o.latency_s for o in ok]),
            "unary_latency_s": percentiles([o.latency_s for o in unary]),
            "stream_latency_s": percentiles([o.latency_s for o in streams]),
            "queue_wait_s": percentiles([o.queue_wait_s for o in ok]),
            "unary_compute_s": percentiles([o.compute_s for o in unary]),
            "unary_server_s": percentiles([o.server_s for o in unary]),
            "unary_outside_server_s": percentiles([o.latency_s - o.server_s for o in unary]),
            "first_audio_s": percentiles([o.first_audio_s for o in streams if o.first_audio_s is not None]),
            "streams": len(streams),
            "stream_viability": (sum(bool(o.viable) for o in streams) / len(streams)) if streams else None,
            "batches": len(self.batch_sizes),
            "batch_size_mean": (items / len(self.batch_sizes)) if self.batch_sizes else None,
            "batch_size_item_mean": (sum(s * s for s in self.batch_sizes) / items) if items else None,
            "batch_size_counts": dict(sorted(Counter(self.batch_sizes).items())),
        }


def percentiles(values: Sequence[float], points: Sequence[int] = (50, 95, 99)) -> dict:
    """Nearest-rank percentiles; empty when there are no values."""
    if not values:
        return {}
    ordered = sorted(values)
    out = {}
    for p in points:
        rank = max(1, -(-p * len(ordered) // 100))  # ceil(p/100 * n), at least 1
        out[f"p{p}"] = ordered[rank - 1]
    out["mean"] = sum(ordered) / len(ordered)
    return out


def viable(arrivals: Sequence[float], durations: Sequence[float]) -> bool:
    """Whether playback that starts when the first chunk arrives never runs dry: every chunk
    with audio must arrive before the audio of the chunks before it has finished playing."""
    if not arrivals:
        return False
    runs_dry_at = arrivals[0]
    for k, (arrival, duration) in enumerate(zip(arrivals, durations)):
        if k and duration > 0 and arrival > runs_dry_at:
            return False
        runs_dry_at += duration
    return True
