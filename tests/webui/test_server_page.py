"""The server page: engine, batching settings, the live queue depth and the charts, refreshed
while the page is open, against a real server whose engine the test can hold up."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch import Client

from .helpers import one, see, wait_until


@pytest.fixture(scope="module")
def gate():
    return threading.Event()


@pytest.fixture(scope="module")
def held_server(gate):
    with ServerThread(ToneEngine(gate=gate), max_batch_size=4, batch_window_ms=20, cache_mb=0) as server:
        yield server


@pytest.fixture
def webui_target(held_server) -> str:
    return held_server.target


async def test_engine_and_batching_settings_are_shown(user, held_server):
    await user.open("/server")
    await see(user, "tone-test")
    assert one(user, "value-engine").text == "tone"
    assert one(user, "value-max_batch").text == "4 sentences"
    assert one(user, "value-window").text == "20 ms"
    assert one(user, "value-workers").text == "1"
    assert one(user, "value-parameters").text == "speaking_rate"
    assert one(user, "value-cloning").text == "no"
    assert one(user, "value-scheduler").text == "streaming-aware, 320 ms margin"
    assert one(user, "value-per_caller").text == "64 sentences"
    await see(user, f"Speech server at {held_server.target}")


async def test_queue_depth_and_charts_follow_the_traffic_while_the_page_is_open(user, held_server, gate):
    await user.open("/server")
    await see(user, "tone-test")
    queue = one(user, "queue-depth")
    batches = one(user, "batch-chart")
    latency = one(user, "latency-chart")
    seen_batches = len(batches.options["series"][0]["data"])
    gate.clear()  # the engine holds its first batch; what comes next waits in the queue
    pool = ThreadPoolExecutor(max_workers=6)
    try:
        with Client(held_server.target, timeout=60) as client:
            futures = [pool.submit(client.synthesize, f"Request number {i}. It has two sentences.") for i in range(6)]
            await wait_until(lambda: queue.text.isdigit() and int(queue.text) > 0, "the page shows work waiting")
            gate.set()
            for future in futures:
                assert future.result(60).duration_seconds > 0
        await wait_until(lambda: queue.text == "0", "the queue empties on the page")
        await wait_until(lambda: len(batches.options["series"][0]["data"]) > seen_batches, "new batches are charted")
        await wait_until(lambda: len(latency.options["series"][0]["data"]) >= 6, "the requests' latencies are charted")
        sizes = [size for _, size in batches.options["series"][0]["data"]]
        assert max(sizes) > 1  # waiting requests were batched together, and the chart shows it
        # The scheduler's fitted cost per step (a batch, for this engine) against rows: the row
        # counts that ran are measured points, the others extrapolated from them.
        costs = one(user, "cost-chart")
        await wait_until(lambda: costs.options["series"][1]["data"], "the measured step costs are charted")
        measured = {rows for rows, _ in costs.options["series"][1]["data"]}
        assert measured <= set(sizes) | {1} and len(costs.options["series"][0]["data"]) == 4
    finally:
        gate.set()
        pool.shutdown(wait=True)
