"""Saved voices in Redis, shared by every replica behind the proxy.

One hash per voice (meta, clip, prompt) and a set of names; creating and deleting run as Lua
scripts, so the name check, the count limit and the write are one atomic step across replicas.
Voice keys carry no TTL: run Redis with an eviction policy that spares them (`volatile-lru`,
where only the result cache's keys, which all expire, are evicted) and with persistence
(`--appendonly yes`), as deploy/compose.yaml does."""

from __future__ import annotations

from ..errors import AlreadyExists, StoreFull, StoreUnavailable
from .store import SavedVoice

KEY_PREFIX = "voxbatch:voice:v1:"
INDEX_KEY = "voxbatch:voices:v1"
TIMEOUT_S = 5.0

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[1]) then return -1 end
redis.call('HSET', KEYS[1], 'meta', ARGV[2], 'clip', ARGV[3], 'prompt', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[5])
return 1
"""
_DELETE = """
local gone = redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return gone
"""


class RedisVoiceStore:
    backend = "redis"

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self._client = aioredis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
        self._create = self._client.register_script(_CREATE)
        self._delete = self._client.register_script(_DELETE)

    async def create(self, voice: SavedVoice, max_voices: int) -> None:
        outcome = await self._call(
            self._create(keys=[KEY_PREFIX + voice.name, INDEX_KEY],
                         args=[max_voices, voice.meta_json(), voice.clip, voice.prompt, voice.name])
        )
        if outcome == 0:
            raise AlreadyExists(f"a voice named {voice.name!r} exists already; delete it first or pick another name")
        if outcome == -1:
            raise StoreFull(f"the server holds {max_voices} saved voices, its limit; delete one first")

    async def get(self, name: str) -> SavedVoice | None:
        fields = await self._call(self._client.hgetall(KEY_PREFIX + name))
        if not fields or b"meta" not in fields:
            return None
        return SavedVoice.from_parts(fields[b"meta"], fields.get(b"clip", b""), fields.get(b"prompt", b""))

    async def list(self) -> list[SavedVoice]:
        names = sorted(n.decode() for n in await self._call(self._client.smembers(INDEX_KEY)))
        if not names:
            return []
        async with self._client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hget(KEY_PREFIX + name, "meta")
            metas = await self._call(pipe.execute())
        return [SavedVoice.from_parts(meta) for meta in metas if meta is not None]

    async def delete(self, name: str) -> bool:
        return bool(await self._call(self._delete(keys=[KEY_PREFIX + name, INDEX_KEY], args=[name])))

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, awaitable):
        from redis.exceptions import RedisError

        try:
            return await awaitable
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"the shared voice store (Redis) is out of reach: {type(error).__name__}: {error}") from None
