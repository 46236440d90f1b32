"""Prometheus metrics of one server, served over HTTP on `--metrics-port`.

Three explicit observation points feed the histograms and the request counter: every RPC's
outcome (grpc_api/status.py), every batch the engine finished (Batcher.on_batch) and every
finished synthesis request (Synthesizer.on_request). What the batcher and the cache count already
(queue depth, memory in use, splits, out-of-memory retries, cache hits) is read at scrape time by
a collector instead of being counted twice.

Cardinality is bounded: labels take values from small fixed sets (RPC names, gRPC status codes,
unary or stream, the cache backend). Request ids appear only as exemplars, which keep at most one
per histogram bucket (and only in the OpenMetrics format).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .batching import Batcher
from .batching.stats import BatchReport
from .cache import Cache, CacheStats
from .domain import EngineInfo
from .gpu_metrics import GpuCollector, GpuMonitor
from .results import RequestRecord

log = logging.getLogger(__name__)

RPCS = ("Synthesize", "StreamSynthesize", "ListVoices", "GetServerInfo", "CreateSpeech")
MODES = ("unary", "stream")
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_SIZE_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128, 256)
SLACK_BUCKETS = (0.0, 0.1, 0.2, 0.32, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
MEMORY_SHARE_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
PEAK_RATIO_BUCKETS = (0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0, 3.0)
EXEMPLAR_ID_CHARS = 64  # exemplar labels may hold 128 characters in all


class Metrics:
    def __init__(
        self, batcher: Batcher, cache: Cache | None, engine: EngineInfo, version: str, gpu: GpuMonitor | None = None
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "voxbatch_requests", "RPCs answered, by method and gRPC status code.", ["rpc", "code"], registry=r
        )
        self.latency = Histogram(
            "voxbatch_request_duration_seconds",
            "End-to-end time of successful synthesis requests, from arrival to the last audio.",
            ["mode"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.first_audio = Histogram(
            "voxbatch_time_to_first_audio_seconds",
            "Time from arrival to the first audio of successful synthesis requests (the whole audio for unary).",
            ["mode"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.queue_wait = Histogram(
            "voxbatch_queue_wait_seconds",
            "Time each work item (sentence) waited in the queue before its batch started.",
            buckets=QUEUE_BUCKETS, registry=r,
        )
        self.compute = Histogram(
            "voxbatch_batch_compute_seconds", "Engine time of each batch.", buckets=LATENCY_BUCKETS, registry=r
        )
        self.batch_size = Histogram(
            "voxbatch_batch_size", "Work items (sentences) per batch.", buckets=BATCH_SIZE_BUCKETS, registry=r
        )
        self.memory_share = Histogram(
            "voxbatch_batch_memory_budget_ratio",
            "Each batch's estimated peak memory as a share of the memory budget.",
            buckets=MEMORY_SHARE_BUCKETS, registry=r,
        )
        # -- the scheduler (issue 10): streams as listeners hear them, rows per step --------------
        self.streams = Counter(
            "voxbatch_streams", "Finished streams: viable (no chunk late for playback) or stalled (at least one).",
            ["outcome"], registry=r,
        )
        self.final_slack = Histogram(
            "voxbatch_stream_final_slack_seconds",
            "Audio a stream still had buffered at its last chunk (negative would mean it ended late).",
            buckets=SLACK_BUCKETS, registry=r,
        )
        self.step_rows = Histogram(
            "voxbatch_step_rows", "Rows each generation step computed (a whole-batch engine's batch counts as one step).",
            buckets=BATCH_SIZE_BUCKETS, registry=r,
        )
        for outcome in ("viable", "stalled"):
            self.streams.labels(outcome)
        self.badcase_retries = Counter(
            "voxbatch_badcase_retries",
            "Sentences generated again because their try ran on to the bad-case length (retry_badcase).",
            registry=r,
        )
        # -- the GPU path (issue 15): the estimate against measured peaks, NVML's GPU figures ---------
        self.peak_ratio = Histogram(
            "voxbatch_batch_memory_measured_ratio",
            "Each measured batch's peak memory (torch's peak statistics, on a GPU) over the engine's estimate of it.",
            buckets=PEAK_RATIO_BUCKETS, registry=r,
        )
        self.peak_estimated = Gauge(
            "voxbatch_batch_memory_estimated_bytes", "The engine's estimate of the last measured batch's peak.", registry=r
        )
        self.peak_measured = Gauge(
            "voxbatch_batch_memory_measured_bytes", "The measured peak of the last measured batch (0 before the first).",
            registry=r,
        )
        self.gpu = gpu if gpu is not None else GpuMonitor()
        log.info("%s", self.gpu.describe())
        r.register(GpuCollector(self.gpu, lambda: batcher.memory_calibration.factor))
        for rpc in RPCS:  # so that dashboards show zeros rather than gaps before the first call
            self.requests.labels(rpc, "OK")
        for mode in MODES:
            self.latency.labels(mode)
            self.first_audio.labels(mode)
        r.register(_StateCollector(batcher, cache, engine, version))
        self._http = None

    # -- observation points ---------------------------------------------------------------------

    def rpc_done(self, rpc: str, code: str) -> None:
        self.requests.labels(rpc, code).inc()

    def batch_ran(self, report: BatchReport) -> None:
        self.batch_size.observe(report.size)
        self.compute.observe(report.compute_s)
        if report.memory_budget_bytes > 0:
            self.memory_share.observe(report.memory_estimate_bytes / report.memory_budget_bytes)
        for wait in report.queue_waits_s:
            self.queue_wait.observe(wait)
        if report.memory_measured is not None:
            estimated, measured = report.memory_measured
            self.peak_estimated.set(estimated)
            self.peak_measured.set(measured)
            if estimated > 0:
                self.peak_ratio.observe(measured / estimated)

    def request_finished(self, record: RequestRecord) -> None:
        mode = "stream" if record.streamed else "unary"
        exemplar = {"request_id": record.request_id[:EXEMPLAR_ID_CHARS]} if record.request_id else None
        self.latency.labels(mode).observe(record.total_s, exemplar)
        self.first_audio.labels(mode).observe(record.first_audio_s, exemplar)
        if record.streamed:
            self.streams.labels("stalled" if record.stalls else "viable").inc()
            self.final_slack.observe(record.final_slack_s)
        if record.badcase_retries:
            self.badcase_retries.inc(record.badcase_retries)

    def step_ran(self, rows: int, seconds: float) -> None:
        self.step_rows.observe(rows)

    # -- the HTTP endpoint ----------------------------------------------------------------------

    def serve(self, host: str, port: int, token: str | None = None) -> int | None:
        """Serve /metrics on host:port, to callers sending `authorization: Bearer <token>` when a
        token is given. A port in use is logged, not fatal: the server's real work goes on, and
        Prometheus shows the target down."""
        try:
            self._http = _start_http(host, port, make_wsgi_app(self.registry), token)
        except OSError as exc:
            log.error(
                "metrics endpoint is off: cannot listen on %s:%d (%s); pick a free --metrics-port, or 0 to turn it off",
                host, port, exc.strerror or exc,
            )
            return None
        bound = self._http.server_address[1]
        log.info("metrics on http://%s:%d/metrics%s", host, bound, " (bearer token required)" if token else "")
        return bound

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        self.gpu.close()


def _start_http(host: str, port: int, app, token: str | None):
    """prometheus_client's WSGI app in a thread, behind a bearer-token check when a token is set."""
    import hmac
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client.exposition import ThreadingWSGIServer

    class Quiet(WSGIRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass

    expected = f"Bearer {token}".encode() if token else None

    def guarded(environ, start_response):
        given = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
        if expected is not None and not hmac.compare_digest(given, expected):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"/metrics needs 'authorization: Bearer <token>'\n"]
        return app(environ, start_response)

    server_class = type("MetricsServer", (ThreadingWSGIServer,), {})
    if ":" in host:
        import socket

        server_class.address_family = socket.AF_INET6
    httpd = make_server(host, port, guarded, server_class, handler_class=Quiet)
    threading.Thread(target=httpd.serve_forever, name="metrics-http", daemon=True).start()
    return httpd


class _StateCollector(Collector):
    """Reads the batcher's and the cache's own figures when Prometheus scrapes."""

    def __init__(
        self, batcher: Batcher, cache: Cache | None, engine: EngineInfo, version: str, gpu: GpuMonitor | None = None
    ) -> None:
        self._batcher = batcher
        self._cache = cache
        self._engine = engine
        self._version = version

    def collect(self) -> Iterator[Metric]:
        b = self._batcher
        stats = b.stats
        info = GaugeMetricFamily("voxbatch_build_info", "The server's version, engine and model (always 1).",
                                 labels=["version", "engine", "model"])
        info.add_metric([self._version, self._engine.name, self._engine.model], 1)
        yield info
        if self._engine.decode_step:
            step = GaugeMetricFamily(
                "voxbatch_decode_step_info",
                "How the engine runs its decode step: cuda-graphs, inductor, eager, or eager-fallback "
                "(compiling failed at start-up; always 1).", labels=["mode"],
            )
            step.add_metric([self._engine.decode_step], 1)
            yield step
        yield GaugeMetricFamily("voxbatch_queue_depth", "Work items (sentences) waiting in the queue now.", value=b.queue_depth)
        yield GaugeMetricFamily("voxbatch_queue_capacity", "Most work items the queue holds (--max-queue-size).",
                                value=b.max_queue_size)
        yield GaugeMetricFamily("voxbatch_running_batches", "Batches running now.", value=b.running_batches)
        yield GaugeMetricFamily("voxbatch_memory_estimated_bytes",
                                "The engine's estimated peak memory of the batches running now.", value=b.memory_in_use)
        yield GaugeMetricFamily("voxbatch_memory_budget_bytes", "The memory budget running batches share.",
                                value=b.limits.memory_budget_bytes)
        counters = (
            ("voxbatch_batches", "Batches the engine finished.", stats.batches),
            ("voxbatch_batch_items", "Work items the engine finished in batches.", stats.items_run),
            ("voxbatch_batches_split_for_memory", "Batches closed early because the next item would overflow the memory budget.",
             stats.split_for_memory),
            ("voxbatch_oom_retries", "Batches that ran out of memory and were retried in halves.", stats.oom_retries),
            ("voxbatch_isolation_retries", "Failed batches retried item by item.", stats.isolation_retries),
            ("voxbatch_work_items_expired", "Work items dropped because their deadline passed (queued or running).", stats.expired),
            ("voxbatch_work_items_cancelled", "Work items dropped (queued or running) because their callers left.", stats.cancelled),
            ("voxbatch_queue_rejections", "Requests refused because the queue was full.", stats.rejected_full),
        )
        for name, help_text, value in counters:
            yield CounterMetricFamily(name, help_text, value=value)
        yield from _scheduler_metrics(b)
        # Without a cache the series stay, at zero with backend "off", so dashboards show no gaps.
        cache_stats = self._cache.stats if self._cache is not None else CacheStats()
        backend = [self._cache.backend if self._cache is not None else "off"]
        for name, help_text, value in (
            ("voxbatch_cache_hits", "Sentences served from the result cache.", cache_stats.hits),
            ("voxbatch_cache_misses", "Sentences looked up in the result cache and not found.", cache_stats.misses),
            ("voxbatch_cache_errors", "Cache lookups and stores that failed (a remote cache out of reach).", cache_stats.errors),
        ):
            family = CounterMetricFamily(name, help_text, labels=["backend"])
            family.add_metric(backend, value)
            yield family


def _scheduler_metrics(batcher: Batcher) -> Iterator[Metric]:
    """The scheduler's decisions and its fitted costs (read at scrape time)."""
    report = batcher.scheduler_report()
    for name, help_text, value in (
        ("voxbatch_scheduler_rows_admitted", "Rows admitted into running batches between steps.", report.rows_admitted),
        ("voxbatch_scheduler_held_back", "Times waiting rows were held back to keep running streams ahead of playback.",
         report.held_back),
        ("voxbatch_caller_cap_rejections", "Requests refused because their caller had its cap of queued work.",
         report.refused_caller_cap),
        ("voxbatch_scheduler_held_for_share", "Decisions that passed over a heavier caller's waiting rows to protect "
         "lighter callers (--fair-slowdown).", report.held_for_share),
        ("voxbatch_scheduler_cut_ins", "Lighter callers' items run between the rows of a flooding caller's item.",
         report.cut_ins),
        ("voxbatch_scheduler_paused_row_steps", "Rows that sat a step out so that others could catch up or step "
         "faster (rows_that_may_wait).", report.paused_row_steps),
    ):
        yield CounterMetricFamily(name, help_text, value=value)
    cost = GaugeMetricFamily("voxbatch_step_cost_seconds", "The scheduler's fitted cost of one step, by rows.", labels=["rows"])
    for point in report.step_costs:
        cost.add_metric([str(point.rows)], point.seconds)
    yield cost
    for name, help_text, value in (
        ("voxbatch_prefill_cost_seconds", "Fitted seconds a joining row's prefill adds to the step it joins.", report.prefill_s),
        ("voxbatch_finish_cost_seconds", "Fitted seconds finishing a row adds to its last step.", report.finish_s),
    ):
        yield GaugeMetricFamily(name, help_text, value=value)
