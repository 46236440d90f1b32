"""Faults under load, on a real server with a controllable engine: failing items, out-of-memory
splits, cancellations and deadlines, graceful shutdown and queue overflow, each with many
requests in flight at once. tests/service/test_server_behaviour.py has the one-request versions;
these check that nothing is lost or mixed up when several things happen together.

The engine is held on a gate while the load gathers, so the grouping into batches is known
without timing anything."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import grpc
import numpy as np

from tests.support.engines import ToneEngine, tone
from tests.support.server import ServerThread
from voxbatch import Client
from voxbatch.errors import VoxbatchError
from voxbatch.tts.v1 import tts_pb2 as pb

from .helpers import Caller, free_port, scrape, wait_for


def expected_pcm(text: str) -> bytes:
    """PCM the tone engine gives for a one-sentence text at its native rate."""
    samples = np.clip(tone(text).samples, -1, 1)
    return (np.round(samples * 32767.0)).astype("<i2").tobytes()


PCM = 5  # AUDIO_ENCODING_PCM_S16LE


def test_only_failing_items_fail_with_internal_and_their_batch_neighbours_succeed():
    gate = threading.Event()
    engine = ToneEngine(gate=gate, fail_on="poison")
    good = [f"good request {i}" for i in range(8)]
    bad = ["poison one", "poison two", "A fine start. Then poison."]  # the last fails on its second sentence
    with ServerThread(engine, max_batch_size=16, metrics_port=free_port()) as server, Caller(server.target) as caller:
        before = scrape(server)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            blocker = pool.submit(caller.unary, text="blocker")
            wait_for(lambda: server.batcher.running_batches == 1)
            unary = {t: pool.submit(caller.unary, text=t, encoding=PCM) for t in good[:4] + bad[:2]}
            streams = {t: pool.submit(caller.stream, text=t, encoding=PCM) for t in good[4:] + bad[2:]}
            wait_for(lambda: server.batcher.queue_depth == 12, what="12 sentences queued")
            gate.set()
            assert blocker.result(15)[0] == grpc.StatusCode.OK
            results = {t: f.result(15) for t, f in {**unary, **streams}.items()}
        after = scrape(server)

    for text in good:
        code, details, responses = results[text]
        assert code == grpc.StatusCode.OK, details
        audio = b"".join(r.audio for r in responses)
        assert audio == expected_pcm(text)  # its own audio, not a neighbour's
    for text in bad:
        code, details, responses = results[text]
        assert code == grpc.StatusCode.INTERNAL
        assert "boom: the engine crashed" in details
    # The stream whose second sentence failed got its first sentence before the error.
    _, _, chunks = results["A fine start. Then poison."]
    assert [c.sentence_index for c in chunks] == [0] and not chunks[0].final
    # The whole crowd shared one batch, which failed and was retried item by item.
    shared = [b for b in engine.batches if len(b) == 12]
    assert len(shared) == 1 and {"poison one", "good request 0"} <= set(shared[0])
    assert after["voxbatch_isolation_retries_total"] - before["voxbatch_isolation_retries_total"] == 1
    gained = after['voxbatch_requests_total{code="INTERNAL",rpc="Synthesize"}'] - before.get(
        'voxbatch_requests_total{code="INTERNAL",rpc="Synthesize"}', 0
    )
    assert gained == 2


def test_out_of_memory_splits_the_batch_and_every_request_gets_its_audio():
    # The metrics module exists (service/voxbatch_server/metrics.py), so the split is checked on
    # the scraped counter; the batcher's own counter must agree with it.
    gate = threading.Event()
    engine = ToneEngine(gate=gate, oom_above=2)
    texts = [f"row {i}" for i in range(6)] + ["Split across. Both halves."]  # 8 sentences in all
    with ServerThread(engine, max_batch_size=8, metrics_port=free_port()) as server, Caller(server.target) as caller:
        before = scrape(server)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            blocker = pool.submit(caller.unary, text="blocker")
            wait_for(lambda: server.batcher.running_batches == 1)
            futures = {t: pool.submit(caller.stream if i % 3 == 0 else caller.unary, text=t, encoding=PCM)
                       for i, t in enumerate(texts)}
            wait_for(lambda: server.batcher.queue_depth == 8, what="8 sentences queued")
            gate.set()
            blocker.result(15)
            results = {t: f.result(15) for t, f in futures.items()}
        after = scrape(server)
        stats = server.batcher.stats

    for text, (code, details, responses) in results.items():
        assert code == grpc.StatusCode.OK, details
        audio = b"".join(r.audio for r in responses)
        if "." not in text:
            assert audio == expected_pcm(text)
        assert all(r.timings.batch_size == 2 for r in responses)  # it ran in a quarter of the batch
    assert [len(b) for b in engine.oom_batches] == [8, 4, 4]
    assert sorted(len(b) for b in engine.batches) == [1, 2, 2, 2, 2]  # the blocker, then four quarters
    # 8 -> 4 + 4 -> four batches of 2: three splits.
    assert after["voxbatch_oom_retries_total"] - before["voxbatch_oom_retries_total"] == 3 == stats.oom_retries
    assert after["voxbatch_batch_items_total"] - before["voxbatch_batch_items_total"] == 9


def test_cancelled_and_expired_requests_never_run_and_the_others_are_unaffected():
    gate = threading.Event()
    engine = ToneEngine(gate=gate)
    keep = [f"keep {i}" for i in range(8)]
    cancel = [f"cancel {i}" for i in range(6)]
    expire = [f"expire {i}" for i in range(6)]
    with ServerThread(engine, max_batch_size=4, metrics_port=0) as server, Caller(server.target) as caller:
        stub = caller.stub
        blocker = stub.Synthesize.future(pb.SynthesizeRequest(text="blocker"), timeout=30)
        wait_for(lambda: server.batcher.running_batches == 1)
        kept = [stub.Synthesize.future(pb.SynthesizeRequest(text=t), timeout=30) for t in keep[:4]]
        kept_streams = [stub.StreamSynthesize(pb.StreamSynthesizeRequest(text=t), timeout=30) for t in keep[4:]]
        cancelled = [stub.Synthesize.future(pb.SynthesizeRequest(text=t), timeout=30) for t in cancel[:4]]
        cancelled_streams = [stub.StreamSynthesize(pb.StreamSynthesizeRequest(text=t), timeout=30) for t in cancel[4:]]
        expiring = [stub.Synthesize.future(pb.SynthesizeRequest(text=t), timeout=1.0) for t in expire[:3]]
        expiring_streams = [stub.StreamSynthesize(pb.StreamSynthesizeRequest(text=t), timeout=1.0) for t in expire[3:]]
        batcher = server.batcher
        wait_for(lambda: batcher.queue_depth + batcher.stats.expired + batcher.stats.cancelled == 20,
                 what="20 sentences queued")
        for call in cancelled + cancelled_streams:
            call.cancel()
        # Cancelled calls leave the queue at once; expiring ones when their deadline passes.
        wait_for(lambda: server.batcher.queue_depth == 8, what="only the kept requests left in the queue")
        gate.set()
        assert blocker.result(15).duration_seconds > 0
        assert all(f.result(15).duration_seconds > 0 for f in kept)
        for call in kept_streams:
            chunks = list(call)
            assert chunks[-1].final and sum(c.duration_seconds for c in chunks) > 0
        for call in cancelled + cancelled_streams:
            assert call.code() == grpc.StatusCode.CANCELLED
        for call in expiring:
            assert call.exception(15).code() == grpc.StatusCode.DEADLINE_EXCEEDED
        for call in expiring_streams:
            try:
                list(call)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            else:
                raise AssertionError("an expired stream was answered")
        wait_for(lambda: server.batcher.running_batches == 0)
        stats = server.batcher.stats
        assert stats.cancelled + stats.expired == 12

    ran = {text for batch in engine.batches for text in batch}
    assert ran == {"blocker", *keep}
    assert not ran & {*cancel, *expire}


def test_graceful_shutdown_under_load_finishes_in_flight_work_and_refuses_new_calls():
    engine = ToneEngine(delay_s=0.1)
    # One sentence per work item (work_item_chars 20), texts short enough for the queue.
    server = ServerThread(engine, max_batch_size=4, metrics_port=0, work_item_chars=20, max_text_chars=1000).__enter__()
    texts = [f"In flight {i}. Second sentence {i}." for i in range(12)]
    caller = Caller(server.target)
    try:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(caller.stream if i % 2 else caller.unary, text=t, encoding=PCM, timeout=60)
                       for i, t in enumerate(texts)]
            # Every sentence has reached the batcher (queued, running or done) and work remains.
            wait_for(lambda: server.batcher.queue_depth + sum(map(len, engine.batches)) == 24
                     and server.batcher.queue_depth >= 8, what="all 24 sentences admitted, 8 still queued")
            stopping = pool.submit(server.stop, 20)
            wait_for(lambda: _health(caller) != "SERVING", what="the server leaving SERVING")
            late = [pool.submit(caller.stream if i % 2 else caller.unary, text=f"too late {i}", timeout=10)
                    for i in range(8)]
            refused = [f.result(30) for f in late]
            results = [f.result(60) for f in futures]  # every wait is bounded: nothing hangs
            stopping.result(60)
    finally:
        caller.channel.close()
        server.stop()

    for code, details, _ in refused:
        assert code == grpc.StatusCode.UNAVAILABLE, (code, details)
    for code, details, responses in results:
        assert code == grpc.StatusCode.OK, details
        assert sum(r.duration_seconds for r in responses) > 0
    assert sum(len(b) for b in engine.batches) == 24  # every sentence ran exactly once
    assert not server._thread.is_alive()


def test_queue_overflow_refuses_the_excess_at_once_and_recovers():
    gate = threading.Event()
    engine = ToneEngine(gate=gate)
    singles = [f"single {i}" for i in range(24)]
    triples = [f"Triple {i} one. Triple {i} two. Triple {i} three." for i in range(4)]
    # Work items of one sentence each (work_item_chars 20), and texts short enough for the queue.
    settings = dict(max_queue_size=8, max_text_chars=60, work_item_chars=20)
    with ServerThread(engine, max_batch_size=4, metrics_port=0, **settings) as server, Client(server.target) as client:
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            blocker = pool.submit(client.synthesize, "blocker")
            wait_for(lambda: server.batcher.running_batches == 1)
            sent = {text: pool.submit(_outcome, client, text) for text in singles + triples}

            def settled() -> bool:
                waiting = {p.state.request_id for p in server.batcher._queue}
                return server.batcher.stats.rejected_full + len(waiting) == len(sent)

            wait_for(settled, what="every request admitted or refused")
            # The engine is still held, so everything refused was answered before any work ran.
            wait_for(lambda: sum(f.done() for f in sent.values()) == server.batcher.stats.rejected_full)
            refused = {t for t, f in sent.items() if f.done()}
            assert refused and all(sent[t].result()[0] == "RESOURCE_EXHAUSTED" for t in refused)
            assert max(sent[t].result()[1] for t in refused) < 5  # "at once", checked loosely
            assert server.batcher.queue_depth <= 8
            gate.set()
            blocker.result(15)
            outcomes = {t: f.result(15)[0] for t, f in sent.items()}

        accepted = {t for t, o in outcomes.items() if o == "OK"}
        assert accepted and accepted.isdisjoint(refused) and accepted | refused == set(sent)
        assert server.batcher.stats.rejected_full == len(refused)
        ran = [text for batch in engine.batches for text in batch]
        for triple in triples:  # a request is admitted whole or not at all
            parts = [s for s in ran if s.startswith(triple.split(" one")[0])]
            assert len(parts) == (3 if triple in accepted else 0)
        assert len(ran) == 1 + sum(3 if t in triples else 1 for t in accepted)

        # When the load drops, a burst within capacity all succeeds.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            assert [o[0] for o in pool.map(lambda i: _outcome(client, f"after {i}"), range(8))] == ["OK"] * 8
        assert client.health() == "SERVING"


def _outcome(client: Client, text: str) -> tuple[str, float]:
    """(status name, seconds the call took)."""
    started = time.monotonic()
    try:
        client.synthesize(text, request_id=text, timeout=30)
        return "OK", time.monotonic() - started
    except VoxbatchError as error:
        return error.code.name, time.monotonic() - started


def _health(caller: Caller) -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        response = health_pb2_grpc.HealthStub(caller.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    except grpc.RpcError as error:
        return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
