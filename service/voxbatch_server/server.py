"""Assembles and runs the gRPC server: engine, batcher, cache, pipeline, health, reflection."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from voxbatch.tts.v1 import tts_pb2, tts_pb2_grpc

from . import __version__
from .batching import Batcher, BatchLimits
from .cache import ResultCache
from .engines import Engine
from .grpc_api.servicer import TtsServicer
from .logs import configure_logging
from .settings import Settings
from .synthesis import Synthesizer

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

    async def stop(self, grace: float | None = None) -> None:
        """Drain: refuse new calls, let in-flight ones finish within `grace`, then stop."""
        grace = self.settings.shutdown_grace_s if grace is None else grace
        log.info("shutting down: draining in-flight work for up to %.0f s", grace)
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.batcher.drain(timeout=1.0)
        self.engine.close()
        log.info("stopped")


def batch_limits(settings: Settings, engine: Engine) -> BatchLimits:
    free = engine.device_free_memory()
    budget = int(free * settings.gpu_memory_fraction) if free is not None else settings.memory_budget_mb << 20
    return BatchLimits(
        max_batch_size=settings.max_batch_size,
        window_s=settings.batch_window_ms / 1000,
        memory_budget_bytes=budget,
        workers=settings.workers,
    )


async def start_server(settings: Settings, engine: Engine | None = None) -> RunningServer:
    """Start serving on settings.host:settings.port (port 0 picks a free one)."""
    if engine is None:
        from .engines.registry import create_engine

        engine = await asyncio.to_thread(create_engine, settings)
    limits = batch_limits(settings, engine)
    batcher = Batcher(engine, limits, max_queue_size=settings.max_queue_size)
    cache = ResultCache(settings.cache_mb << 20) if settings.cache_mb else None
    synthesizer = Synthesizer(engine, batcher, settings, cache)

    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
            ("grpc.max_send_message_length", MAX_SEND_BYTES),
        ]
    )
    tts_pb2_grpc.add_TtsServiceServicer_to_server(TtsServicer(synthesizer, batcher, settings), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise OSError(f"cannot listen on {settings.host}:{settings.port}")
    batcher.start()
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    info = engine.info
    log.info(
        "voxbatch %s serving on %s:%d: engine %s, model %s, %d Hz; batch window %d ms, max batch %d, "
        "budget %d MiB, queue %d",
        __version__, settings.host, port, info.name, info.model, info.native_sample_rate,
        settings.batch_window_ms, limits.max_batch_size, limits.memory_budget_bytes >> 20, settings.max_queue_size,
    )
    return RunningServer(server, port, engine, batcher, synthesizer, health_servicer, settings)


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then shut down gracefully."""
    configure_logging(settings.log_level, settings.log_json)
    running = await start_server(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.stop()
