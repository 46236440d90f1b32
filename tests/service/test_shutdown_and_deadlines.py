"""How calls end when the server stops or the caller runs out of time, seen from a real gRPC client
and from the server's own counters and logs."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time

import grpc
import pytest

from tests.support.engines import ToneEngine
from tests.support.net import wait_until
from tests.support.server import ServerThread
from voxbatch.tts.v1 import tts_pb2 as pb
from voxbatch.tts.v1 import tts_pb2_grpc


@pytest.fixture
def stub_for():
    channels = []

    def make(server):
        channel = grpc.insecure_channel(server.target)
        channels.append(channel)
        return tts_pb2_grpc.TtsServiceStub(channel)

    yield make
    for channel in channels:
        channel.close()


def requests_counted(server, rpc: str, code: str) -> float:
    value = server.running.metrics.registry.get_sample_value("voxbatch_requests_total", {"rpc": rpc, "code": code})
    return value or 0.0


def test_deadlines_are_counted_as_expired_and_every_abandoned_call_logs_its_end(stub_for, caplog):
    gate = threading.Event()
    engine = ToneEngine(gate=gate)
    with ServerThread(engine) as server:
        stub = stub_for(server)
        caplog.set_level(logging.INFO, logger="voxbatch_server")
        computing = stub.Synthesize.future(pb.SynthesizeRequest(text="computing", request_id="late-1"), timeout=0.5)
        wait_until(lambda: server.batcher.running_batches == 1)
        queued = stub.Synthesize.future(pb.SynthesizeRequest(text="queued", request_id="late-2"), timeout=0.5)
        left = stub.StreamSynthesize(pb.StreamSynthesizeRequest(text="streamed", request_id="gone-1"), timeout=30)
        wait_until(lambda: server.batcher.queue_depth == 2)
        left.cancel()
        for call in (computing, queued):
            assert call.exception(10).code() == grpc.StatusCode.DEADLINE_EXCEEDED
        gate.set()
        wait_until(lambda: requests_counted(server, "Synthesize", "DEADLINE_EXCEEDED") == 2, what="both deadlines counted")
        wait_until(lambda: requests_counted(server, "StreamSynthesize", "CANCELLED") == 1, what="the cancel counted")
        assert requests_counted(server, "Synthesize", "CANCELLED") == 0
        stats = server.batcher.stats
        assert (stats.expired, stats.cancelled) == (2, 1)  # one of the expired rows was running
        ends = {r.request_id: r for r in caplog.records if getattr(r, "outcome", "") in ("DEADLINE_EXCEEDED", "CANCELLED")}
        assert ends["late-1"].outcome == ends["late-2"].outcome == "DEADLINE_EXCEEDED"
        assert ends["gone-1"].outcome == "CANCELLED" and "cancelled by the caller" in ends["gone-1"].getMessage()


def test_past_the_grace_period_unfinished_calls_are_told_the_server_shut_down(stub_for, caplog):
    gate = threading.Event()
    engine = ToneEngine(gate=gate)
    server = ServerThread(engine).__enter__()
    try:
        stub = stub_for(server)
        running = stub.Synthesize.future(pb.SynthesizeRequest(text="running"), timeout=30)
        wait_until(lambda: server.batcher.running_batches == 1)
        queued = stub.Synthesize.future(pb.SynthesizeRequest(text="queued"), timeout=30)
        stream = stub.StreamSynthesize(pb.StreamSynthesizeRequest(text="a stream"), timeout=30)
        wait_until(lambda: server.batcher.queue_depth == 2)
        threading.Timer(1.0, gate.set).start()  # the engine returns after the grace period
        caplog.set_level(logging.INFO)
        server.stop(grace=0.3)
        batches_at_stop = len(engine.batches)
        for call in (running, queued):
            error = call.exception(10)
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert "shut down before finishing this request" in error.details()
        with pytest.raises(grpc.RpcError) as raised:
            list(stream)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "shut down before finishing" in raised.value.details()
        time.sleep(0.3)
        assert len(engine.batches) == batches_at_stop  # nothing ran after "stopped"
        messages = [r.getMessage() for r in caplog.records]
        assert messages.index("stopped") == len(messages) - 1
        assert not [r for r in caplog.records if r.exc_info]
    finally:
        server.stop()


def test_a_request_being_prepared_when_the_shutdown_begins_is_finished(stub_for):
    engine = ToneEngine(prepare_delay_s=0.5)
    server = ServerThread(engine).__enter__()
    try:
        stub = stub_for(server)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            call = stub.Synthesize.future(pb.SynthesizeRequest(text="arrived before the signal"), timeout=30)
            assert engine.preparing.wait(10)
            stopping = pool.submit(server.stop, 5)
            response = call.result(10)
            assert len(response.audio) > 0
            stopping.result(10)
    finally:
        server.stop()
