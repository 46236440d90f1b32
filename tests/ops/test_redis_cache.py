"""The shared result cache on a real redis-server started by the tests: replicas share results,
and a server keeps serving, uncached, when Redis goes away (and caches again when it is back)."""

from __future__ import annotations

import logging

import httpx
import numpy as np
import pytest
import redis

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch import Client
from voxbatch_server.cache_redis import KEY_PREFIX, RETRY_AFTER_S, pack, unpack
from voxbatch_server.domain import EngineAudio

from .support import free_port, parse_metrics, wait_until



def test_packed_audio_round_trips_exactly():
    audio = EngineAudio(np.linspace(-1, 1, 1001, dtype=np.float32), 22050, length_capped=True)
    back = unpack(pack(audio))
    assert back.sample_rate == 22050 and back.length_capped is True
    assert np.array_equal(back.samples, audio.samples) and back.samples.dtype == np.float32
    assert unpack(b"not ours") is None and unpack(b"XXXX" + pack(audio)[4:]) is None


def test_replicas_share_results_through_redis(redis_server):
    engine_a, engine_b = ToneEngine(), ToneEngine()
    with ServerThread(engine_a, redis_url=redis_server.url, redis_ttl_s=600) as a, \
            ServerThread(engine_b, redis_url=redis_server.url, redis_ttl_s=600) as b, \
            Client(a.target) as client_a, Client(b.target) as client_b:
        first = client_a.synthesize("Shared between replicas. Two sentences.")
        second = client_b.synthesize("Shared between replicas. Two sentences.")
    assert not first.timings.cache_hit and second.timings.cache_hit
    assert second.data == first.data
    assert len(engine_a.batches) >= 1 and engine_b.batches == []  # B never ran its engine
    keys = redis.Redis(port=redis_server.port).keys(KEY_PREFIX + "*")
    assert len(keys) == 1  # the two short sentences are one work item
    assert 0 < redis.Redis(port=redis_server.port).ttl(keys[0]) <= 600


def test_the_server_keeps_serving_uncached_while_redis_is_away(redis_server, caplog):
    engine = ToneEngine()
    with ServerThread(engine, redis_url=redis_server.url, metrics_port=free_port()) as server, Client(server.target) as client:
        metrics_url = f"http://127.0.0.1:{server.running.metrics_port}/metrics"
        assert not client.synthesize("Cache me.").timings.cache_hit
        assert client.synthesize("Cache me.").timings.cache_hit

        redis_server.stop()
        with caplog.at_level(logging.WARNING, logger="voxbatch_server.cache_redis"):
            results = [client.synthesize("Cache me.") for _ in range(3)]
        assert all(not r.timings.cache_hit and r.duration_seconds > 0 for r in results)
        warnings = [r for r in caplog.records if "out of reach" in r.getMessage()]
        assert len(warnings) == 1  # logged once, not per request
        samples = parse_metrics(httpx.get(metrics_url, timeout=5).text)
        assert samples['voxbatch_cache_errors_total{backend="redis"}'] >= 1
        assert samples['voxbatch_cache_hits_total{backend="redis"}'] == 1

        redis_server.start()  # an empty Redis on the same port: caching resumes after the pause
        texts = iter(range(1000))

        def cached_again() -> bool:
            text = f"Back again {next(texts)}."
            client.synthesize(text)
            return client.synthesize(text).timings.cache_hit

        wait_until(cached_again, 10 * RETRY_AFTER_S, "caching to resume after Redis came back", interval=0.2)


def test_a_server_starts_and_serves_when_redis_was_never_there():
    with ServerThread(ToneEngine(), redis_url=f"redis://127.0.0.1:{free_port()}/0") as server, Client(server.target) as client:
        assert [client.synthesize("No Redis at all.").timings.cache_hit for _ in range(2)] == [False, False]
        assert server.running.cache.stats.errors >= 1 and not server.running.cache.available
