"""Per-key quotas: requests at once, requests per minute, audio seconds per day.

Where they are counted:
- `LocalQuotas`: in this process. Behind a proxy with N replicas a key could then use up to N
  times each limit, so this is for a single server.
- `RedisQuotas` (when `--redis-url` is set, as the deployments do): in Redis, shared by every
  replica, so a limit holds for the whole cluster. Each check is one Lua script, atomic in Redis.
  Calls in flight are members of a sorted set scored with a lease expiry (LEASE_S), so that the
  slots of a replica that died free themselves. When Redis cannot be reached, the replica counts
  locally (logged once, retried every few seconds): limits then hold per replica, not per cluster.

Windows are calendar windows in UTC: a minute's count starts again at the next full minute, a
day's audio at midnight UTC. A call is admitted when the day's audio so far is under the limit;
the audio it produces is counted when it ends, so one call may overshoot the daily figure.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import QuotaExceeded
from .keys import KeyLimits

log = logging.getLogger(__name__)

LEASE_S = 900  # longest a call holds a concurrency slot in Redis after its replica died
CONCURRENT_RETRY_S = 1.0  # a slot frees when any call of the key ends: worth trying again soon
KEY_PREFIX = "voxbatch:quota:v1:"
REDIS_TIMEOUT_S = 0.5
REDIS_RETRY_AFTER_S = 2.0


@dataclass
class Lease:
    key_id: str
    token: str
    counted_in_redis: bool


def _windows(now: float) -> tuple[int, int, float, float]:
    minute, day = int(now // 60), int(now // 86400)
    return minute, day, (minute + 1) * 60 - now, (day + 1) * 86400 - now


def _exceeded(kind: str, key_id: str, limits: KeyLimits, retry_after: float) -> QuotaExceeded:
    what = {
        "concurrent": f"{limits.concurrent} requests at once",
        "per_minute": f"{limits.per_minute} requests per minute",
        "audio": f"{limits.audio_seconds_per_day:g} seconds of audio per day (UTC)",
    }[kind]
    return QuotaExceeded(f"quota of key {key_id} reached: {what}; retry in {retry_after:.0f} s", retry_after)


class LocalQuotas:
    backend = "local"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._in_flight: defaultdict[str, int] = defaultdict(int)
        self._minute: dict[str, tuple[int, int]] = {}  # key id -> (minute, count)
        self._audio: dict[str, tuple[int, float]] = {}  # key id -> (day, seconds)

    async def acquire(self, key_id: str, limits: KeyLimits) -> Lease:
        minute, day, minute_left, day_left = _windows(self.clock())
        if limits.concurrent and self._in_flight[key_id] >= limits.concurrent:
            raise _exceeded("concurrent", key_id, limits, CONCURRENT_RETRY_S)
        window, count = self._minute.get(key_id, (minute, 0))
        count = count if window == minute else 0
        if limits.per_minute and count >= limits.per_minute:
            raise _exceeded("per_minute", key_id, limits, minute_left)
        audio_day, seconds = self._audio.get(key_id, (day, 0.0))
        if limits.audio_seconds_per_day and audio_day == day and seconds >= limits.audio_seconds_per_day:
            raise _exceeded("audio", key_id, limits, day_left)
        self._minute[key_id] = (minute, count + 1)
        self._in_flight[key_id] += 1
        return Lease(key_id, "", False)

    async def release(self, lease: Lease, audio_seconds: float) -> None:
        if not lease.counted_in_redis:
            self._in_flight[lease.key_id] = max(0, self._in_flight[lease.key_id] - 1)
        if audio_seconds > 0:
            _, day, _, _ = _windows(self.clock())
            audio_day, seconds = self._audio.get(lease.key_id, (day, 0.0))
            self._audio[lease.key_id] = (day, (seconds if audio_day == day else 0.0) + audio_seconds)

    async def close(self) -> None:
        pass


# KEYS: in-flight set, minute counter, day audio counter.
# ARGV: now, lease expiry, token, concurrent limit, per-minute limit, audio limit, minute ttl.
# Returns {0} when admitted, else {1|2|3} for the limit that refused (concurrent, minute, audio).
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local concurrent, per_minute, audio = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if concurrent > 0 and redis.call('ZCARD', KEYS[1]) >= concurrent then return {1} end
if per_minute > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= per_minute then return {2} end
if audio > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= audio then return {3} end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[8])
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[7])
return {0}
"""


class RedisQuotas:
    backend = "redis"

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.clock = clock
        self._local = LocalQuotas(lambda: self.clock())  # while Redis is out of reach
        self._down_until: float | None = None
        self._client = aioredis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S, retry=Retry(NoBackoff(), 0)
        )
        self._acquire = self._client.register_script(_ACQUIRE)

    async def acquire(self, key_id: str, limits: KeyLimits) -> Lease:
        if not self._may_try():
            return await self._local.acquire(key_id, limits)
        now = self.clock()
        minute, day, minute_left, day_left = _windows(now)
        token = uuid.uuid4().hex
        try:
            (refused,) = await self._acquire(
                keys=[f"{KEY_PREFIX}{key_id}:inflight", f"{KEY_PREFIX}{key_id}:minute:{minute}",
                      f"{KEY_PREFIX}{key_id}:audio:{day}"],
                args=[now, now + LEASE_S, token, limits.concurrent, limits.per_minute,
                      limits.audio_seconds_per_day, 120, LEASE_S],
            )
            self._reached()
        except Exception as exc:  # noqa: BLE001 - Redis out of reach: count locally meanwhile
            self._failed(exc)
            return await self._local.acquire(key_id, limits)
        if refused:
            kind, retry = {1: ("concurrent", CONCURRENT_RETRY_S), 2: ("per_minute", minute_left), 3: ("audio", day_left)}[int(refused)]
            raise _exceeded(kind, key_id, limits, retry)
        return Lease(key_id, token, True)

    async def release(self, lease: Lease, audio_seconds: float) -> None:
        if not lease.counted_in_redis:
            await self._local.release(lease, audio_seconds)
            return
        _, day, _, day_left = _windows(self.clock())
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.zrem(f"{KEY_PREFIX}{lease.key_id}:inflight", lease.token)
                if audio_seconds > 0:
                    audio_key = f"{KEY_PREFIX}{lease.key_id}:audio:{day}"
                    pipe.incrbyfloat(audio_key, audio_seconds)
                    pipe.expire(audio_key, int(day_left) + 3600)
                await pipe.execute()
            self._reached()
        except Exception as exc:  # noqa: BLE001 - the lease expires by itself
            self._failed(exc)

    async def close(self) -> None:
        await self._client.aclose()

    def _may_try(self) -> bool:
        return self._down_until is None or time.monotonic() >= self._down_until

    def _reached(self) -> None:
        if self._down_until is not None:
            log.info("quotas: redis is reachable again; limits hold across replicas again")
            self._down_until = None

    def _failed(self, exc: Exception) -> None:
        if self._down_until is None:
            log.warning("quotas: redis is out of reach (%s: %s); counting per replica until it is back",
                        type(exc).__name__, exc)
        self._down_until = time.monotonic() + REDIS_RETRY_AFTER_S
