"""A short soak (benchmarks/soak.py is the long one): steady load from the load generator, with
failing, invalid, abandoned and expiring requests mixed in, for about 20 seconds. No request is
lost (each gets a final answer, and every success has all its audio), the server ends idle, and
its memory is flat once warm."""

from __future__ import annotations

import asyncio
import concurrent.futures
import statistics
import threading
import time

import grpc

from benchmarks.loadgen import LoadSpec, run_load
from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch.tts.v1 import tts_pb2 as pb

from .helpers import Caller, rss_mib, wait_for

DURATION_S = 20.0
TEXTS = (
    "A short one.",
    "Two sentences here. And the second.",
    "Three now. One more. And the last!",
    "Priority does not matter here.",
)


def side_traffic(target: str, stop: threading.Event) -> dict[str, list[str]]:
    """Faults while the main load runs: {kind: [status names]}."""
    seen: dict[str, list[str]] = {"poison": [], "invalid": [], "abandoned": [], "expiring": []}
    with Caller(target) as caller:
        while not stop.is_set():
            seen["poison"].append(caller.unary(text="Fine. A poison sentence.")[0].name)
            seen["invalid"].append(caller.unary(text="hi", sample_rate_hz=-1)[0].name)
            request = pb.StreamSynthesizeRequest(text="Leave after one. Never heard. Never heard either.")
            stream = caller.stub.StreamSynthesize(request, timeout=30)
            next(stream)
            stream.cancel()
            seen["abandoned"].append("CANCELLED")
            seen["expiring"].append(caller.unary(text="In a hurry.", timeout=0.001)[0].name)
            time.sleep(0.05)
    return seen


def test_short_soak_loses_nothing_and_memory_stays_flat():
    engine = ToneEngine(delay_s=0.01, fail_on="poison")
    with ServerThread(engine, max_batch_size=8, max_queue_size=128, metrics_port=0, cache_mb=0) as server:
        spec = LoadSpec(clients=6, max_requests=100_000, duration_s=DURATION_S, timeout_s=30, texts=TEXTS, seed=1)
        samples: list[tuple[float, float]] = []
        stop = threading.Event()

        def sample_memory() -> None:
            while not stop.wait(0.5):
                samples.append((time.monotonic(), rss_mib()))

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            sampler = pool.submit(sample_memory)
            faults = pool.submit(side_traffic, server.target, stop)
            result = asyncio.run(run_load(server.target, spec))
            stop.set()
            seen = faults.result(60)
            sampler.result(10)

        wait_for(lambda: server.batcher.queue_depth == 0 and server.batcher.running_batches == 0)
        summary = result.summary()
        with Caller(server.target) as caller:
            assert caller.unary(text="still here")[0] == grpc.StatusCode.OK

    # Nothing lost: every request of the main load got OK with all of its audio.
    assert summary["sent"] >= 50 and summary["ok"] == summary["sent"], summary["errors"]
    assert summary["incomplete"] == 0
    assert summary["streams"] > 0 and summary["batch_size_mean"] > 1
    # The faults got what they should, every time.
    assert set(seen["poison"]) == {"INTERNAL"} and set(seen["invalid"]) == {"INVALID_ARGUMENT"}
    assert set(seen["expiring"]) <= {"DEADLINE_EXCEEDED"} and len(seen["abandoned"]) >= 5
    # Flat memory: the last third of the run against the middle third (the first is warm-up).
    third = len(samples) // 3
    middle = statistics.median(m for _, m in samples[third : 2 * third])
    last = statistics.median(m for _, m in samples[2 * third :])
    assert last - middle < 40, [round(m) for _, m in samples]
