"""Assembles and runs the gRPC server: engine, batcher, cache, pipeline, health, reflection, metrics."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from voxbatch.tts.v1 import tts_pb2, tts_pb2_grpc

from . import __version__
from .batching import Batcher, BatchLimits
from .cache import Cache, ResultCache
from .engines import Engine
from .auth.attempts import FailedAttempts
from .auth.keys import KeysFileError, KeyStore
from .grpc_api.auth import Authorization
from .grpc_api.servicer import TtsServicer
from .grpc_api.status import UndecodableRequests
from .logs import configure_logging
from .metrics import Metrics
from .settings import Settings, SettingsError, StartupError, is_loopback
from .synthesis import Synthesizer
from .voices import VoiceLibrary, make_voice_store

log = logging.getLogger(__name__)

SERVICE_NAME = tts_pb2.DESCRIPTOR.services_by_name["TtsService"].full_name
MAX_RECEIVE_BYTES = 32 << 20  # a 30 s stereo 48 kHz WAV reference fits with room to spare
MAX_SEND_BYTES = 256 << 20


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    engine: Engine
    batcher: Batcher
    synthesizer: Synthesizer
    health: health.HealthServicer
    settings: Settings
    metrics: Metrics
    metrics_port: int | None = None  # where /metrics is served; None when off
    cache: Cache | None = None
    keys: KeyStore | None = None  # None: the server runs without keys
    quotas: object | None = None  # auth.quotas.LocalQuotas or RedisQuotas, with keys
    voices: VoiceLibrary | None = None

    async def stop(self, grace: float | None = None) -> None:
        """Drain: refuse new calls, let in-flight ones finish within `grace`, then stop."""
        grace = self.settings.shutdown_grace_s if grace is None else grace
        log.info("shutting down: draining in-flight work for up to %.0f s", grace)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.health.enter_graceful_shutdown()
        # Drain the batcher while gRPC still hands calls to the handlers, so that calls arriving
        # now are refused with UNAVAILABLE (ShuttingDown) while queued work finishes. gRPC's own
        # stop cancels (CANCELLED) the calls it has received but not yet handed over.
        await self.batcher.drain(timeout=grace)
        await self.server.stop(max(0.5, grace - (loop.time() - started)))
        self.metrics.close()
        if self.cache is not None:
            await self.cache.close()
        if self.quotas is not None:
            await self.quotas.close()
        if self.voices is not None:
            await self.voices.store.close()
        self.engine.close()
        log.info("stopped")


def make_cache(settings: Settings) -> Cache | None:
    """Redis when --redis-url is set (shared by replicas), else the in-memory LRU (--cache-mb, 0 = off)."""
    if settings.redis_url:
        from .cache_redis import RedisCache

        return RedisCache(settings.redis_url, settings.redis_ttl_s)
    return ResultCache(settings.cache_mb << 20) if settings.cache_mb else None


def make_quotas(settings: Settings):
    """Per-key quotas in Redis when --redis-url is set (shared by replicas), else in this process."""
    from .auth.quotas import LocalQuotas, RedisQuotas

    return RedisQuotas(settings.redis_url) if settings.redis_url else LocalQuotas()


def load_keys(settings: Settings) -> KeyStore | None:
    if settings.api_keys_file is None:
        if not is_loopback(settings.host):
            log.warning(
                "serving WITHOUT authentication on %s (--allow-unauthenticated): anyone who reaches port %d "
                "may use this server and its voices", settings.host, settings.port,
            )
        return None
    try:
        return KeyStore(settings.api_keys_file)
    except KeysFileError as exc:
        raise SettingsError(f"invalid settings:\n  api_keys_file: {exc}") from None


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    if settings.tls_cert is None:
        return None
    client_ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def batch_limits(settings: Settings, engine: Engine) -> BatchLimits:
    free = engine.device_free_memory()
    budget = int(free * settings.gpu_memory_fraction) if free is not None else settings.memory_budget_mb << 20
    useful = engine.useful_batch_size
    return BatchLimits(
        max_batch_size=min(settings.max_batch_size, useful) if useful else settings.max_batch_size,
        window_s=settings.batch_window_ms / 1000,
        memory_budget_bytes=budget,
        workers=settings.workers or engine.concurrent_batches,
        scheduler=settings.scheduler,
        margin_s=settings.stream_margin_ms / 1000,
        window_mode=settings.batch_window_mode,
        per_caller_cap=settings.max_queued_per_caller,
        fair_slowdown=settings.fair_slowdown,
    )


def _port_in_use(address: str) -> StartupError:
    return StartupError(
        f"cannot listen on {address}: the port is in use (another server?) or the address is not this "
        "machine's; pick another --port, or stop what holds it"
    )


def _check_port_free(host: str, port: int) -> None:
    """Bind the address once, as gRPC will (SO_REUSEADDR, no SO_REUSEPORT), and let it go."""
    if port == 0:
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError:
        raise _port_in_use(f"{host}:{port}") from None


async def start_server(settings: Settings, engine: Engine | None = None) -> RunningServer:
    """Start serving on settings.host:settings.port (port 0 picks a free one)."""
    keys = load_keys(settings)  # before the engine loads: a bad keys file fails at once
    metrics_token = settings.metrics_token_file.read_text().strip() if settings.metrics_token_file else None
    _check_port_free(settings.host, settings.port)  # before the engine loads: fail in a second, not a minute
    owns_engine = engine is None
    if engine is None:
        from .engines.registry import create_engine

        engine = await asyncio.to_thread(create_engine, settings)
    limits = batch_limits(settings, engine)
    if limits.max_batch_size < settings.max_batch_size:
        log.info("engine %s computes a batch's items one after another here, so batches hold %d item(s) "
                 "(not --max-batch-size %d): batching gains nothing and callers interleave by fair share",
                 engine.info.name, limits.max_batch_size, settings.max_batch_size)
    batcher = Batcher(engine, limits, max_queue_size=settings.max_queue_size)
    cache = make_cache(settings)
    voices = VoiceLibrary(engine, make_voice_store(settings), settings)
    synthesizer = Synthesizer(engine, batcher, settings, cache, voices)
    metrics = Metrics(batcher, cache, engine.info, __version__)
    batcher.on_batch = metrics.batch_ran
    batcher.on_step = metrics.step_ran
    synthesizer.on_request = metrics.request_finished

    quotas = make_quotas(settings) if keys is not None else None
    authorization = Authorization(
        keys, quotas, FailedAttempts(settings.auth_failure_limit, settings.auth_failure_window_s),
        trust_forwarded_for=settings.trust_forwarded_for, metrics=metrics,
    )
    server = grpc.aio.server(
        # Authorization first: nothing of a call is looked at before its key is.
        interceptors=[authorization, UndecodableRequests((SERVICE_NAME,))],
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
            # gRPC enables SO_REUSEPORT by default: a second server on the same port would then
            # start too and share the calls at random. A port in use must fail the start.
            ("grpc.so_reuseport", 0),
        ]
    )
    tts_pb2_grpc.add_TtsServiceServicer_to_server(TtsServicer(synthesizer, batcher, settings, metrics), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if settings.reflection:
        reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    credentials = server_credentials(settings)
    address = f"{settings.host}:{settings.port}"
    try:
        port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError:  # grpc's "Failed to bind to address"
        port = 0
    if port == 0:
        if owns_engine:
            engine.close()
        raise _port_in_use(address)
    batcher.start()
    await server.start()
    metrics_port = (
        metrics.serve(settings.metrics_host or settings.host, settings.metrics_port, metrics_token)
        if settings.metrics_port else None
    )
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    info = engine.info
    log.info(
        "voxbatch %s serving on %s:%d: engine %s, model %s, %d Hz; batch window %d ms, max batch %d, workers %d, "
        "budget %d MiB, queue %d (%s per caller); scheduler %s, margin %d ms, window %s, fair slowdown %g; cache %s; saved voices in %s; %s, %s",
        __version__, settings.host, port, info.name, info.model, info.native_sample_rate,
        settings.batch_window_ms, limits.max_batch_size, limits.workers, limits.memory_budget_bytes >> 20, settings.max_queue_size,
        settings.max_queued_per_caller or "no cap", settings.scheduler, settings.stream_margin_ms, settings.batch_window_mode,
        settings.fair_slowdown, cache.backend if cache is not None else "off", voices.store.backend,
        f"{len(keys.keys)} api keys, quotas {quotas.backend}" if keys is not None else "no api keys",
        ("mutual TLS" if settings.tls_client_ca else "TLS") if credentials else "plaintext",
    )
    return RunningServer(
        server, port, engine, batcher, synthesizer, health_servicer, settings, metrics, metrics_port, cache,
        keys, quotas, voices,
    )


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then shut down gracefully."""
    configure_logging(settings.log_level, settings.log_json)
    running = await start_server(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if running.keys is not None:  # SIGHUP rereads the keys file (it is also reread when it changes)
        loop.add_signal_handler(signal.SIGHUP, running.keys.reload)
    await stop.wait()
    await running.stop()
