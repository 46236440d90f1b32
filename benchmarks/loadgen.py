"""A load generator for a running voxbatch server, over gRPC on loopback.

    .venv/bin/python benchmarks/loadgen.py 127.0.0.1:50051 --clients 8 --requests 200 --duration 20
    .venv/bin/python benchmarks/loadgen.py 127.0.0.1:50051 --rate 5 --requests 100 --duration 20 --json

Two ways to offer load, both bounded in count (`max_requests`) and in time (`duration_s`; calls
still in flight then get at most `timeout_s` more):

- closed loop: `clients` callers, each sending its next request when the previous one ends;
- open loop: Poisson arrivals at `rate` requests per second, whatever the server does; an
  arrival that would exceed `max_in_flight` calls is counted as dropped instead of sent.

A share of the requests (`stream_share`) use StreamSynthesize, the rest Synthesize. The summary
gives throughput (requests and audio seconds per second), latency percentiles, queue wait, the
batch sizes the server ran (from GetServerInfo), time to first audio of streams and streaming
viability: the share of streams whose every chunk arrived before the audio already received
had finished playing, playback starting when the first chunk arrives.

Only loopback targets are accepted: this is a benchmark tool, not a way to load someone's server.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import random
import sys
import time
from pathlib import Path
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import grpc

from voxbatch.tts.v1 import tts_pb2 as pb
from voxbatch.tts.v1 import tts_pb2_grpc

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.load_results import LoadResult, Outcome, viable  # noqa: E402

DEFAULT_TEXTS = (
    "Hello there. This is a short test.",
    "The weather is fine today. We should go outside.",
    "Batching makes speech faster. Nobody waits for long.",
    "Please call me back tomorrow. I will be at home.",
    "Numbers like forty two are read aloud. So are dates.",
    "A quick brown fox jumps. The lazy dog sleeps on.",
)
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 32 << 20)]


@dataclass
class LoadSpec:
    """What load to offer. Exactly one of `clients` (closed loop) or `rate` (open loop) is set."""

    clients: int | None = None
    rate: float | None = None
    max_requests: int = 100
    duration_s: float = 10.0
    timeout_s: float = 120.0
    stream_share: float = 0.5
    max_in_flight: int = 256
    texts: Sequence[str] = DEFAULT_TEXTS
    voice: str = ""
    encoding: int = pb.AUDIO_ENCODING_PCM_S16LE
    parameters: dict = field(default_factory=dict)
    seed: int = 0
    # Who the server sees as the caller (x-voxbatch-client): each closed-loop client is its own
    # caller; open-loop arrivals are spread over `callers` callers. `caller` names them all as one.
    caller: str = "load"
    callers: int = 16
    priority: int = pb.PRIORITY_UNSPECIFIED

    def __post_init__(self) -> None:
        if (self.clients is None) == (self.rate is None):
            raise ValueError("set exactly one of clients (closed loop) or rate (open loop)")
        if self.clients is not None and not 1 <= self.clients <= 1024:
            raise ValueError(f"clients must be 1-1024, not {self.clients}")
        if self.rate is not None and not 0 < self.rate <= 10_000:
            raise ValueError(f"rate must be above 0 and at most 10000 per second, not {self.rate}")
        if self.max_requests < 1 or self.duration_s <= 0 or self.timeout_s <= 0:
            raise ValueError("max_requests, duration_s and timeout_s must be positive")
        if not 0 <= self.stream_share <= 1:
            raise ValueError(f"stream_share must be 0-1, not {self.stream_share}")

    @property
    def label(self) -> str:
        return f"closed, {self.clients} clients" if self.clients is not None else f"open, {self.rate:g}/s"


def check_loopback(target: str) -> None:
    host = target.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"only loopback targets are allowed (127.0.0.1, ::1, localhost), not {target!r}")


class _Run:
    def __init__(self, stub: tts_pb2_grpc.TtsServiceStub, spec: LoadSpec) -> None:
        self.stub = stub
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.t0 = time.perf_counter()
        self.outcomes: list[Outcome] = []

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def request(self, index: int, streamed: bool):
        spec = self.spec
        text = spec.texts[index % len(spec.texts)]
        kind = pb.StreamSynthesizeRequest if streamed else pb.SynthesizeRequest
        return kind(
            text=text, voice=spec.voice, encoding=spec.encoding, request_id=f"load-{spec.seed}-{index}",
            parameters=pb.SynthesisParameters(**spec.parameters), priority=spec.priority,
        )

    def metadata(self, client: int) -> tuple:
        spec = self.spec
        name = spec.caller if spec.callers <= 1 else f"{spec.caller}-{client % spec.callers}"
        return (("x-voxbatch-client", name),)

    def streams(self, index: int) -> bool:
        share = self.spec.stream_share
        return int((index + 1) * share) > int(index * share)  # spreads streams evenly

    async def one(self, index: int, client: int) -> None:
        streamed = self.streams(index)
        request = self.request(index, streamed)
        outcome = Outcome(index, streamed, self.now(), 0.0, "OK")
        metadata = self.metadata(client)
        try:
            if streamed:
                await self._stream(request, outcome, metadata)
            else:
                response = await self.stub.Synthesize(request, timeout=self.spec.timeout_s, metadata=metadata)
                outcome.audio_s = response.duration_seconds
                outcome.queue_wait_s = response.timings.queue_wait_seconds
                outcome.compute_s = response.timings.compute_seconds
                outcome.server_s = response.timings.total_seconds
                outcome.batch_size = response.timings.batch_size
                outcome.complete = len(response.audio) > 0
        except grpc.aio.AioRpcError as error:
            outcome.code = error.code().name
            outcome.details = (error.details() or "")[:200]
        outcome.end = self.now()
        if not streamed and outcome.code == "OK":
            outcome.deliveries = [(outcome.end, outcome.audio_s)]
        self.outcomes.append(outcome)

    async def _stream(self, request, outcome: Outcome, metadata: tuple) -> None:
        arrivals, durations, sentences = [], [], set()
        final, count = False, 0
        call = self.stub.StreamSynthesize(request, timeout=self.spec.timeout_s, metadata=metadata)
        async for chunk in call:
            arrivals.append(self.now())
            durations.append(chunk.duration_seconds)
            sentences.add(chunk.sentence_index)
            final, count = chunk.final, chunk.sentence_count
            outcome.queue_wait_s = max(outcome.queue_wait_s, chunk.timings.queue_wait_seconds)
            outcome.batch_size = max(outcome.batch_size, chunk.timings.batch_size)
        outcome.chunks = len(arrivals)
        outcome.audio_s = sum(durations)
        outcome.deliveries = list(zip(arrivals, durations))
        if arrivals:
            outcome.first_audio_s = arrivals[0] - outcome.start
        outcome.viable = viable(arrivals, durations)
        outcome.complete = final and sentences == set(range(count)) and outcome.audio_s > 0

    async def closed(self) -> int:
        spec = self.spec
        counter = iter(range(spec.max_requests))

        async def client(number: int) -> None:
            for index in counter:
                if self.now() >= spec.duration_s:
                    return
                await self.one(index, number)

        await asyncio.gather(*(client(number) for number in range(spec.clients)))
        return 0

    async def open(self) -> int:
        spec = self.spec
        tasks: set[asyncio.Task] = set()
        dropped = 0
        at = 0.0
        for index in range(spec.max_requests):
            at += self.rng.expovariate(spec.rate)
            if at >= spec.duration_s:
                break
            delay = at - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= spec.max_in_flight:
                dropped += 1
                continue
            task = asyncio.create_task(self.one(index, index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=spec.timeout_s + 5)
        return dropped


async def recent_batch_sizes(stub: tts_pb2_grpc.TtsServiceStub, since_unix: float) -> list[int]:
    """Sizes of the batches the server finished since `since_unix` (its last 1000 at most)."""
    info = await stub.GetServerInfo(pb.GetServerInfoRequest(), timeout=10)
    return [b.size for b in info.recent_batches if b.end_time_unix_seconds >= since_unix]


async def recent_steps(target: str, since_unix: float) -> list[tuple[float, int]]:
    """(seconds since `since_unix`, rows) of the steps the server ran since then (its last 2000)."""
    check_loopback(target)
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        info = await tts_pb2_grpc.TtsServiceStub(channel).GetServerInfo(pb.GetServerInfoRequest(), timeout=10)
    return [(s.end_time_unix_seconds - since_unix, s.rows) for s in info.recent_steps if s.end_time_unix_seconds >= since_unix]


async def run_load(target: str, spec: LoadSpec) -> LoadResult:
    """Offer `spec`'s load to the server at `target` (loopback only) and collect the outcomes."""
    check_loopback(target)
    async with grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS) as channel:
        stub = tts_pb2_grpc.TtsServiceStub(channel)
        await asyncio.wait_for(channel.channel_ready(), 30)
        since = time.time()
        run = _Run(stub, spec)
        dropped = await (run.closed() if spec.clients is not None else run.open())
        wall = max((o.end for o in run.outcomes), default=0.0) - min((o.start for o in run.outcomes), default=0.0)
        sizes = await recent_batch_sizes(stub, since)
    run.outcomes.sort(key=lambda o: o.index)
    return LoadResult(spec, run.outcomes, dropped, wall, sizes)


def format_summary(summary: dict) -> str:
    def ms(d: dict, key: str) -> str:
        return f"{d[key] * 1000:.0f} ms" if key in d else "-"

    lat, ttfa, wait = summary["latency_s"], summary["first_audio_s"], summary["queue_wait_s"]
    viability = summary["stream_viability"]
    lines = [
        f"load: {summary['load']}; sent {summary['sent']}, ok {summary['ok']} ({summary['incomplete']} incomplete), "
        f"errors {summary['errors'] or 'none'}, "
        f"dropped {summary['dropped']}, over {summary['wall_s']:.1f} s",
        f"throughput: {summary['requests_per_s']:.2f} requests/s, {summary['audio_s_per_s']:.2f} audio s/s",
        f"latency: p50 {ms(lat, 'p50')}, p95 {ms(lat, 'p95')}, p99 {ms(lat, 'p99')}; "
        f"queue wait p50 {ms(wait, 'p50')}, p95 {ms(wait, 'p95')}",
        f"streams: {summary['streams']}, first audio p50 {ms(ttfa, 'p50')}, p95 {ms(ttfa, 'p95')}, "
        f"viable {'-' if viability is None else f'{viability:.0%}'}, goodput {summary['goodput_s_per_s']:.2f} audio s/s",
        f"batches: {summary['batches']}, sizes {summary['batch_size_counts']}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", help="host:port of a server on loopback")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--clients", type=int, help="closed loop: this many concurrent callers")
    how.add_argument("--rate", type=float, help="open loop: Poisson arrivals per second")
    parser.add_argument("--requests", type=int, default=100, help="most requests to send (default 100)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to keep sending (default 10)")
    parser.add_argument("--timeout", type=float, default=120.0, help="deadline of each call, seconds (default 120)")
    parser.add_argument("--stream-share", type=float, default=0.5, help="share of requests that stream (default 0.5)")
    parser.add_argument("--max-in-flight", type=int, default=256, help="open loop: most open calls (default 256)")
    parser.add_argument("--text", action="append", help="a text to speak (repeat; default: a built-in set)")
    parser.add_argument("--voice", default="")
    parser.add_argument("--steps", type=int, help="inference_steps (VoxCPM)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    spec = LoadSpec(
        clients=args.clients, rate=args.rate, max_requests=args.requests, duration_s=args.duration,
        timeout_s=args.timeout, stream_share=args.stream_share, max_in_flight=args.max_in_flight,
        texts=tuple(args.text or DEFAULT_TEXTS), voice=args.voice, seed=args.seed,
        parameters={"inference_steps": args.steps} if args.steps else {},
    )
    result = asyncio.run(run_load(args.target, spec))
    summary = result.summary()
    if args.json:
        print(json.dumps({**summary, "spec": {k: v for k, v in asdict(spec).items() if k != "texts"}}, indent=2))
    else:
        print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
