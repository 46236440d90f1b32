"""Per-key quotas on a real server: requests per minute, requests at once and audio seconds per day,
each reached (RESOURCE_EXHAUSTED with google.rpc.RetryInfo saying when to come back) and reset; and
the same limits shared by two servers through one Redis, as replicas behind Envoy share them.
The quotas' clock is moved by the tests instead of waiting for a minute or a day to pass."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from voxbatch.tts.v1 import tts_pb2 as pb
from voxbatch.tts.v1 import tts_pb2_grpc

from tests.support.engines import ToneEngine
from tests.support.net import wait_until
from tests.support.security import add_key
from tests.support.server import ServerThread
from voxbatch import Client, OverloadedError

pytestmark = pytest.mark.timeout(120)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0 + 5  # 5 s into a minute and into a UTC day

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    keys = {
        "per_minute": add_key(path, "three a minute", per_minute=3)[1],
        "at_once": add_key(path, "one at a time", concurrent=1)[1],
        "audio": add_key(path, "two seconds a day", audio_seconds_per_day=2.0)[1],
        "unlimited": add_key(path, "no limits")[1],
    }
    return path, keys


def refused(call) -> OverloadedError:
    with pytest.raises(OverloadedError) as caught:
        call()
    assert caught.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "quota" in caught.value.details
    assert caught.value.retry_after_s is not None  # RetryInfo in the status details
    return caught.value


@pytest.fixture(scope="module")
def local(keyfile):
    gate = threading.Event()
    gate.set()
    engine = ToneEngine(gate=gate)
    with ServerThread(engine, api_keys_file=keyfile[0], cache_mb=0) as server:
        clock = FakeClock()
        server.running.quotas.clock = clock
        yield server, clock, gate


def test_requests_per_minute_are_refused_until_the_next_minute(local, keyfile):
    server, clock, _ = local
    with Client(server.target, api_key=keyfile[1]["per_minute"], timeout=10) as client:
        client.synthesize("One.")
        list(client.stream("Two."))
        client.voices()  # reading is not counted
        client.server_info()
        client.synthesize("Three.")
        error = refused(lambda: client.synthesize("Four."))
        assert "3 requests per minute" in error.details and error.retry_after_s == pytest.approx(55, abs=0.01)
        refused(lambda: list(client.stream("Four.")))
        with Client(server.target, api_key=keyfile[1]["unlimited"], timeout=10) as other:
            other.synthesize("Another key is not affected.")
        clock.now += 55
        client.synthesize("A new minute.")


def test_requests_at_once_free_their_slot_when_they_end(local, keyfile):
    server, _, gate = local
    gate.clear()  # the engine holds every batch until the gate opens
    with Client(server.target, api_key=keyfile[1]["at_once"], timeout=20) as client:
        first = threading.Thread(target=lambda: client.synthesize("Held by the engine."))
        first.start()
        try:
            wait_until(lambda: server.batcher.running_batches == 1, 10, "the first call to run")
            error = refused(lambda: client.synthesize("A second call at once."))
            assert "1 requests at once" in error.details and error.retry_after_s == pytest.approx(1.0)
        finally:
            gate.set()
            first.join(20)
        client.synthesize("The slot is free again.")


def test_audio_seconds_per_day_are_counted_after_each_call_and_reset_at_midnight(local, keyfile):
    server, clock, _ = local
    with Client(server.target, api_key=keyfile[1]["audio"], timeout=10) as client:
        produced = 0.0
        while produced < 2.0:
            produced += client.synthesize("This sentence makes a tone of a second or so.").duration_seconds
        error = refused(lambda: client.synthesize("Over the day's audio."))
        assert "2 seconds of audio per day" in error.details
        assert error.retry_after_s == pytest.approx(86400 - (clock.now % 86400), abs=0.01)
        clock.now += error.retry_after_s
        assert client.synthesize("A new day.").duration_seconds > 0


# -- shared by two servers through Redis ------------------------------------------------------------------


@pytest.mark.slow
def test_two_servers_sharing_redis_enforce_one_limit(keyfile, redis_server, tmp_path):
    path = tmp_path / "keys.json"
    _, per_minute = add_key(path, "four a minute, cluster-wide", per_minute=4)
    _, at_once = add_key(path, "one at a time, cluster-wide", concurrent=1)
    gate = threading.Event()
    gate.set()
    clock = FakeClock()
    settings = dict(api_keys_file=path, cache_mb=0, redis_url=redis_server.url)
    with ServerThread(ToneEngine(gate=gate), **settings) as a, ServerThread(ToneEngine(), **settings) as b:
        assert a.running.quotas.backend == "redis"
        a.running.quotas.clock = b.running.quotas.clock = clock
        with Client(a.target, api_key=per_minute) as on_a, Client(b.target, api_key=per_minute) as on_b:
            on_a.synthesize("One.")
            on_b.synthesize("Two.")
            on_a.synthesize("Three.")
            on_b.synthesize("Four.")
            refused(lambda: on_a.synthesize("Five, on the first server."))
            refused(lambda: on_b.synthesize("Five, on the second server."))
            clock.now += 60
            on_b.synthesize("A new minute on the second server.")

        gate.clear()
        with Client(a.target, api_key=at_once, timeout=20) as on_a, Client(b.target, api_key=at_once) as on_b:
            held = threading.Thread(target=lambda: on_a.synthesize("Held on the first server."))
            held.start()
            try:
                wait_until(lambda: a.batcher.running_batches == 1, 10, "the call on the first server to run")
                refused(lambda: on_b.synthesize("At the same time, on the second server."))
            finally:
                gate.set()
                held.join(20)
            on_b.synthesize("After the first one ended.")

        # Redis gone: each server goes on counting by itself rather than refusing or admitting all.
        redis_server.stop()
        clock.now += 60
        with Client(a.target, api_key=per_minute) as on_a:
            for i in range(4):
                on_a.synthesize(f"Counted locally {i}.")
            refused(lambda: on_a.synthesize("Over the limit, counted locally."))


def test_the_schedulers_fair_share_counts_by_key_not_by_address_or_header(keyfile):
    """Two keys from one address are two callers; a header cannot make one key pass for another."""
    path, keys = keyfile
    gate = threading.Event()
    # One sentence per work item (work_item_chars 20), so the queue counts sentences.
    with ServerThread(ToneEngine(gate=gate), api_keys_file=path, cache_mb=0, max_batch_size=1,
                      max_queued_per_caller=3, work_item_chars=20, max_text_chars=1000) as server:
        first, second = keys["unlimited"], keys["per_minute"]
        spoofed = (("x-voxbatch-client", "someone-else"),)
        held = []
        with Client(server.target, api_key=first, timeout=20) as a, Client(server.target, api_key=second, timeout=20) as b:
            try:
                held.append(threading.Thread(target=lambda: a.synthesize("Sentence one. Sentence two. Sentence three.")))
                held[-1].start()
                wait_until(lambda: server.batcher.queue_depth == 2, 10, "two sentences of the first key to queue")
                stub = tts_pb2_grpc.TtsServiceStub(a._channel)
                with pytest.raises(grpc.RpcError) as caught:  # the same key, claiming to be another caller
                    stub.Synthesize(pb.SynthesizeRequest(text="Sentence four. Sentence five."), metadata=a._metadata + spoofed, timeout=5)
                assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "this caller already has 2" in caught.value.details()
                held.append(threading.Thread(target=lambda: b.synthesize("Six.")))
                held[-1].start()
                wait_until(lambda: server.batcher.queue_depth == 3, 10, "the second key's sentence to queue")  # not refused
                first_id = first.split("_")[1]
                assert dict(server.batcher.fair.refused) == {f"key:{first_id}": 1}
            finally:
                gate.set()
                for thread in held:
                    thread.join(20)
