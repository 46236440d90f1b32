"""The load generator's own arithmetic and bounds (benchmarks/loadgen.py), and one short run of
each loop against a real server."""

from __future__ import annotations

import asyncio
import threading

import pytest

from benchmarks.load_results import LoadResult, Outcome, percentiles, viable
from benchmarks.loadgen import LoadSpec, check_loopback, run_load
from tests.support.engines import ToneEngine
from tests.support.server import ServerThread


def test_percentiles_are_nearest_rank():
    values = list(range(1, 101))
    assert percentiles(values) == {"p50": 50, "p95": 95, "p99": 99, "mean": 50.5}
    assert percentiles([7.0])["p99"] == 7.0
    assert percentiles([]) == {}


def test_a_stream_is_viable_when_no_chunk_comes_after_the_audio_before_it_ran_out():
    # Chunks of 1 s of audio: the second must arrive within 1 s of the first, the third within 2 s.
    assert viable([0.0, 1.0, 2.0], [1.0, 1.0, 1.0])
    assert viable([5.0, 5.5, 6.9], [1.0, 1.0, 1.0])
    assert not viable([0.0, 1.2, 1.3], [1.0, 1.0, 1.0])
    assert not viable([0.0, 0.5, 2.1], [1.0, 1.0, 1.0])
    assert viable([0.0, 0.5, 9.0], [1.0, 1.0, 0.0])  # a closing chunk without audio cannot stall playback
    assert not viable([], [])


def test_steady_rate_counts_audio_as_it_arrived_while_the_load_was_offered():
    # Load offered for 11 s; the window is 1-11 s. Unary requests deliver their audio when they
    # end, streams chunk by chunk: what arrives before the window or in the drain after it does
    # not count, however long the drain.
    spec = LoadSpec(clients=1, duration_s=11.0)
    unary = [Outcome(i, False, 2.0 * i, 2.0 * i + 2.0, "OK", audio_s=2.0, deliveries=[(2.0 * i + 2.0, 2.0)]) for i in range(6)]
    stream = Outcome(6, True, 0.0, 30.0, "OK", audio_s=6.0, deliveries=[(0.5, 1.0), (5.0, 2.0), (30.0, 3.0)])
    result = LoadResult(spec, [*unary, stream], 0, 30.0, [])
    assert result.steady_rate(unary) == pytest.approx(1.0)  # ends at 2, 4, 6, 8, 10 s
    assert result.steady_rate([stream]) == pytest.approx(0.2)  # only the chunk at 5 s
    assert result.steady_rate(unary, count=True) == pytest.approx(0.5)


def test_only_loopback_targets_are_accepted():
    for target in ("127.0.0.1:50051", "localhost:1", "[::1]:50051", "127.5.6.7:9"):
        check_loopback(target)
    for target in ("10.0.0.1:50051", "example.com:443", "0.0.0.0:50051"):
        with pytest.raises(ValueError, match="loopback"):
            check_loopback(target)


def test_specs_are_bounded_and_pick_one_loop():
    with pytest.raises(ValueError, match="exactly one"):
        LoadSpec()
    with pytest.raises(ValueError, match="exactly one"):
        LoadSpec(clients=2, rate=1.0)
    with pytest.raises(ValueError, match="positive"):
        LoadSpec(clients=2, max_requests=0)
    assert LoadSpec(rate=2.5).label == "open, 2.5/s"


def test_closed_and_open_loops_against_a_server_stop_at_their_bounds():
    gate = threading.Event()
    with ServerThread(ToneEngine(delay_s=0.02), metrics_port=0, cache_mb=0) as server:
        closed = asyncio.run(run_load(server.target, LoadSpec(clients=4, max_requests=24, duration_s=30)))
        summary = closed.summary()
        assert summary["sent"] == summary["ok"] == 24 and summary["incomplete"] == 0
        assert summary["streams"] == 12 and summary["stream_viability"] is not None
        assert summary["first_audio_s"]["p50"] > 0 and summary["latency_s"]["p95"] >= summary["latency_s"]["p50"]
        # Every text of the default set has two short sentences: one work item when unary, two
        # when streamed (a stream's first sentence goes alone).
        assert sum(closed.batch_sizes) == 12 * 1 + 12 * 2
        assert summary["requests_per_s"] > 0 and summary["audio_s_per_s"] > 0

        opened = asyncio.run(run_load(server.target, LoadSpec(rate=40, max_requests=1000, duration_s=1.5)))
        assert 10 <= len(opened.outcomes) < 1000  # the time bound stopped it, not the count
        assert all(o.code == "OK" for o in opened.outcomes)

    # An open loop never holds more than max_in_flight calls: the rest are counted as dropped.
    with ServerThread(ToneEngine(gate=gate), metrics_port=0, cache_mb=0) as server:
        spec = LoadSpec(rate=200, max_requests=40, duration_s=5, max_in_flight=3, timeout_s=10, stream_share=0)
        threading.Timer(1.0, gate.set).start()
        held = asyncio.run(run_load(server.target, spec))
        assert len(held.outcomes) >= 3 and held.dropped > 0
        assert len(held.outcomes) + held.dropped <= 40
