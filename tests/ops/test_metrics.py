"""The Prometheus endpoint of a real server (in-process, on loopback ports), and the Grafana
dashboard that reads it."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import re
import socket
import sys
import threading

import httpx
import pytest

from tests.support.engines import ToneEngine
from tests.support.fake_nvml import fake_nvml
from tests.support.server import ServerThread
from voxbatch import Client
from voxbatch.errors import InvalidRequestError

from .support import DEPLOY, free_port, parse_metrics, wait_until

DASHBOARD = DEPLOY / "grafana" / "dashboards" / "voxbatch.json"


@pytest.fixture(scope="module")
def metered(piper_engine):
    # A fake NVML, so that the GPU series the dashboard reads exist on this GPU-less machine.
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "pynvml", fake_nvml())
        patch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        with ServerThread(piper_engine, cache_mb=16, metrics_port=free_port()) as server:
            yield server


def scrape(server) -> dict[str, float]:
    return parse_metrics(httpx.get(f"http://127.0.0.1:{server.running.metrics_port}/metrics", timeout=5).text)


def test_requests_are_counted_by_rpc_and_status(metered):
    before = scrape(metered)
    with Client(metered.target) as client:
        client.synthesize("Counting this request.", temperature=0.0)
        client.synthesize("Counting this request.", temperature=0.0)  # a cache hit (audio without noise is cacheable)
        list(client.stream("Streamed. In two parts."))
        client.voices()
        with pytest.raises(InvalidRequestError):
            client.synthesize("   ")
    after = scrape(metered)

    def gained(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    assert gained('voxbatch_requests_total{code="OK",rpc="Synthesize"}') == 2
    assert gained('voxbatch_requests_total{code="INVALID_ARGUMENT",rpc="Synthesize"}') == 1
    assert gained('voxbatch_requests_total{code="OK",rpc="StreamSynthesize"}') == 1
    assert gained('voxbatch_requests_total{code="OK",rpc="ListVoices"}') == 1
    assert gained('voxbatch_request_duration_seconds_count{mode="unary"}') == 2
    assert gained('voxbatch_request_duration_seconds_count{mode="stream"}') == 1
    assert gained('voxbatch_time_to_first_audio_seconds_count{mode="stream"}') == 1
    assert gained('voxbatch_request_duration_seconds_bucket{le="+Inf",mode="unary"}') == 2
    assert gained("voxbatch_queue_wait_seconds_count") == 3  # one sentence, then two; the hit never queued
    assert gained("voxbatch_batch_size_count") == gained("voxbatch_batches_total") >= 2
    assert gained("voxbatch_batch_compute_seconds_sum") > 0
    assert gained("voxbatch_batch_memory_budget_ratio_count") >= 2
    assert gained('voxbatch_cache_hits_total{backend="memory"}') == 1
    assert gained('voxbatch_cache_misses_total{backend="memory"}') == 1  # the stream's noisy audio is never looked up
    assert after["voxbatch_queue_depth"] == 0 and after["voxbatch_running_batches"] == 0
    assert after["voxbatch_memory_budget_bytes"] == 2048 << 20 and after["voxbatch_memory_estimated_bytes"] == 0
    assert after['voxbatch_build_info{engine="piper",model="en_US-joe-medium",version="0.1.0"}'] == 1
    # The scheduler: the stream finished (viable on an idle server), steps were counted, and the
    # fitted cost of one step is exported once measured.
    assert gained('voxbatch_streams_total{outcome="viable"}') + gained('voxbatch_streams_total{outcome="stalled"}') == 1
    assert gained("voxbatch_stream_final_slack_seconds_count") == 1
    assert gained("voxbatch_step_rows_count") == gained("voxbatch_batches_total")  # Piper: a batch is its step
    assert after['voxbatch_step_cost_seconds{rows="1"}'] > 0


def test_request_ids_do_not_add_series_and_appear_only_as_exemplars(metered):
    with Client(metered.target) as client:
        client.synthesize("Warm up the series.", request_id="warm-up")
        before = set(scrape(metered))
        for i in range(5):
            client.synthesize(f"Distinct {i}.", request_id=f"unique-request-{i}")
    after = set(scrape(metered))
    assert after == before  # same series, only their values moved
    assert not any("unique-request" in name for name in after)
    openmetrics = httpx.get(
        f"http://127.0.0.1:{metered.running.metrics_port}/metrics",
        headers={"accept": "application/openmetrics-text; version=1.0.0"}, timeout=5,
    ).text
    assert re.search(r'voxbatch_request_duration_seconds_bucket\{.*\} \d+(\.\d+)? # \{request_id="unique-request-\d+"\}', openmetrics)


def test_memory_splits_and_out_of_memory_retries_are_exported():
    """A gated engine holds one batch while six items queue; then the budget (64 MiB, 20 MiB per
    item) closes the next batch at three items, and the engine's out-of-memory above two items
    makes the batcher retry in halves."""
    gate = threading.Event()
    engine = ToneEngine(bytes_per_char=2 << 20, oom_above=2, gate=gate)
    with ServerThread(engine, memory_budget_mb=64, cache_mb=0, metrics_port=free_port()) as server, Client(server.target) as client:
        with concurrent.futures.ThreadPoolExecutor(7) as pool:
            first = pool.submit(client.synthesize, "word 0000")
            wait_until(lambda: server.batcher.running_batches == 1, 10, "the first batch to start")
            rest = [pool.submit(client.synthesize, f"word {i:04d}") for i in range(1, 7)]
            wait_until(lambda: server.batcher.queue_depth == 6, 10, "six items to queue")
            held = scrape(server)
            gate.set()
            results = [first.result(30), *(f.result(30) for f in rest)]
        after = scrape(server)
    assert all(r.duration_seconds > 0 for r in results)
    assert held["voxbatch_queue_depth"] == 6 and held["voxbatch_running_batches"] == 1
    assert held["voxbatch_memory_estimated_bytes"] == 9 * (2 << 20)  # one 9-character item
    assert held["voxbatch_memory_budget_bytes"] == 64 << 20
    assert after["voxbatch_batches_split_for_memory_total"] >= 1
    assert after["voxbatch_oom_retries_total"] >= 1
    assert after["voxbatch_batch_memory_budget_ratio_bucket{le=\"1.0\"}"] == after["voxbatch_batch_memory_budget_ratio_count"]
    assert after['voxbatch_cache_hits_total{backend="off"}'] == 0


def test_metrics_port_zero_turns_the_endpoint_off(piper_engine):
    with ServerThread(piper_engine, metrics_port=0) as server:
        assert server.running.metrics_port is None


def test_a_busy_metrics_port_is_logged_and_the_server_still_serves(piper_engine, caplog):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="voxbatch_server.metrics"):
            with ServerThread(piper_engine, metrics_port=port) as server, Client(server.target) as client:
                assert server.running.metrics_port is None
                assert client.synthesize("Still serving.").duration_seconds > 0
    assert any("metrics endpoint is off" in r.getMessage() and str(port) in r.getMessage() for r in caplog.records)


# -- the Grafana dashboard ---------------------------------------------------------------------------

PROMQL_WORDS = {
    "sum", "avg", "min", "max", "count", "rate", "irate", "increase", "histogram_quantile", "by", "without",
    "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool", "clamp_min", "topk",
}


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["definition"])
        assert match, variable["definition"]
        queries.append(match.group(1))
    return queries


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are no function, keyword, label
    matcher, grouping label, range or Grafana variable."""
    expr = re.sub(r'"[^"]*"', "", expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"\$\w+", "", expr)
    return {w for w in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr) if w not in PROMQL_WORDS}


def test_dashboard_queries_only_metrics_a_running_server_exports(metered):
    with Client(metered.target) as client:  # so that every labelled series exists
        client.synthesize("Dashboard check.")
        list(client.stream("Dashboard stream."))
    exported = {re.sub(r"\{.*", "", name) for name in scrape(metered)}
    queried = set().union(*(metric_names(q) for q in dashboard_queries()))
    assert queried, "the dashboard queries nothing"
    assert all(name.startswith("voxbatch_") for name in queried), queried
    assert queried <= exported, f"queried but not exported: {sorted(queried - exported)}"
    # And the dashboard covers what the issue asks operators to watch.
    for wanted in ("voxbatch_requests_total", "voxbatch_queue_wait_seconds_bucket", "voxbatch_batch_compute_seconds_bucket",
                   "voxbatch_request_duration_seconds_bucket", "voxbatch_time_to_first_audio_seconds_bucket",
                   "voxbatch_batch_size_sum", "voxbatch_queue_depth", "voxbatch_memory_estimated_bytes",
                   "voxbatch_memory_budget_bytes", "voxbatch_batches_split_for_memory_total", "voxbatch_oom_retries_total",
                   "voxbatch_cache_hits_total", "voxbatch_streams_total", "voxbatch_scheduler_held_back_total",
                   "voxbatch_step_rows_bucket", "voxbatch_step_cost_seconds", "voxbatch_gpu_utilization_ratio",
                   "voxbatch_gpu_memory_used_bytes", "voxbatch_gpu_memory_total_bytes", "voxbatch_batch_memory_measured_bytes",
                   "voxbatch_batch_memory_estimated_bytes", "voxbatch_memory_estimate_correction"):
        assert wanted in queried, wanted


def test_dashboard_is_well_formed():
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "prometheus" and panel["targets"], panel["title"]
            assert {"x", "y", "w", "h"} <= panel["gridPos"].keys() and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
