"""The result cache in Redis, shared by every replica behind the proxy.

A sentence synthesised by one replica is a cache hit on all of them. Redis bounds the memory itself
(run it with `--maxmemory ... --maxmemory-policy allkeys-lru`); each entry also expires after
`ttl_s`. When Redis is out of reach the server goes on uncached: lookups miss, stores are dropped,
the failure is logged once and counted, and Redis is tried again every RETRY_AFTER_S seconds.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable, Sequence

import numpy as np

from .cache import CacheStats
from .domain import EngineAudio

log = logging.getLogger(__name__)

KEY_PREFIX = "voxbatch:audio:v1:"
# Every Redis call gives up after this long: a cache must never hold a request up for long.
TIMEOUT_S = 0.5
# After a failure, Redis is left alone this long before the next try.
RETRY_AFTER_S = 2.0

_HEADER = struct.Struct("<4sIB")  # magic, sample rate, length capped
_MAGIC = b"VXA1"


def pack(audio: EngineAudio) -> bytes:
    samples = np.ascontiguousarray(audio.samples, dtype="<f4")
    return _HEADER.pack(_MAGIC, audio.sample_rate, int(audio.length_capped)) + samples.tobytes()


def unpack(data: bytes) -> EngineAudio | None:
    """The audio, or None for an entry this version cannot read."""
    if len(data) < _HEADER.size or (len(data) - _HEADER.size) % 4:
        return None
    magic, rate, capped = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        return None
    samples = np.frombuffer(data, dtype="<f4", offset=_HEADER.size).astype(np.float32)
    return EngineAudio(samples, rate, bool(capped))


class RedisCache:
    backend = "redis"

    def __init__(self, url: str, ttl_s: int, clock: Callable[[], float] = time.monotonic) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.url = url
        self.ttl_s = ttl_s
        self.stats = CacheStats()
        self._clock = clock
        self._down_until: float | None = None  # set while Redis is considered out of reach
        self._client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=TIMEOUT_S,
            socket_timeout=TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),  # no retries: a miss is cheaper than waiting
        )

    @property
    def available(self) -> bool:
        return self._down_until is None

    async def lookup(self, keys: Sequence[str]) -> list[EngineAudio | None]:
        if not keys:
            return []
        values: list[bytes | None] = [None] * len(keys)
        if self._may_try():
            try:
                values = await self._client.mget([KEY_PREFIX + key for key in keys])
                self._reached()
            except Exception as exc:  # noqa: BLE001 - any Redis or socket failure means "uncached"
                self._failed(exc)
        found = [unpack(v) if v is not None else None for v in values]
        hits = sum(a is not None for a in found)
        self.stats.hits += hits
        self.stats.misses += len(found) - hits
        return found

    async def store(self, key: str, audio: EngineAudio) -> None:
        if not self._may_try():
            return
        try:
            await self._client.set(KEY_PREFIX + key, pack(audio), ex=self.ttl_s)
            self._reached()
        except Exception as exc:  # noqa: BLE001 - see lookup
            self._failed(exc)

    async def close(self) -> None:
        await self._client.aclose()

    def _may_try(self) -> bool:
        return self._down_until is None or self._clock() >= self._down_until

    def _reached(self) -> None:
        if self._down_until is not None:
            log.info("redis cache at %s is reachable again; caching resumes", _safe(self.url))
            self._down_until = None

    def _failed(self, exc: Exception) -> None:
        self.stats.errors += 1
        if self._down_until is None:
            log.warning(
                "redis cache at %s is out of reach (%s: %s); serving uncached, retrying every %.0f s",
                _safe(self.url), type(exc).__name__, exc, RETRY_AFTER_S,
            )
        self._down_until = self._clock() + RETRY_AFTER_S


def _safe(url: str) -> str:
    """The URL without a password, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
