"""The result cache: synthesised sentences by content key. ResultCache is the in-memory LRU
(the default); cache_redis.RedisCache shares results between replicas. The pipeline uses either
through `lookup` and `store`, which never raise: a cache that fails is a cache that misses.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from .domain import EngineAudio, SpeechTask


def cache_key(engine: str, model: str, task: SpeechTask, defaults: Mapping[str, float] | None = None) -> str:
    """Everything that determines a sentence's audio: engine, model, voice, reference, parameters, text.

    Parameters the request left out count as their `defaults`, so an explicit default and an
    omitted one share a key. Output encoding and rate are not part of it: the cache holds native
    audio, encoded per request.
    """
    params = {**(defaults or {}), **task.params.given()}
    h = hashlib.sha256()
    for part in (engine, model, task.voice, task.text, repr(sorted((k, float(v)) for k, v in params.items()))):
        h.update(part.encode())
        h.update(b"\0")
    if task.voice_prompt is not None:  # a saved voice's prompt (or the reference's): a re-saved name differs
        h.update(task.voice_prompt.digest.encode())
    elif task.reference is not None:
        h.update(task.reference.digest.encode())
    if task.instructions:
        h.update(b"\0instructions\0" + task.instructions.encode())
    if task.prompt is not None:
        h.update(b"\0prompt\0" + task.prompt.digest.encode())
    return h.hexdigest()


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    errors: int = 0  # lookups or stores that failed (a remote cache out of reach)


class Cache(Protocol):
    """What the synthesis pipeline needs from a result cache."""

    backend: str  # "memory" or "redis", for metrics
    stats: CacheStats

    async def lookup(self, keys: Sequence[str]) -> list[EngineAudio | None]:
        """The cached audio of each key, None where there is none (or the cache failed)."""

    async def store(self, key: str, audio: EngineAudio) -> None:
        """Keep a result; failures are counted, never raised."""

    async def close(self) -> None:
        """Release connections."""


class ResultCache:
    """In-memory LRU bounded by bytes, one per process."""

    backend = "memory"

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.stats = CacheStats()
        self._items: OrderedDict[str, EngineAudio] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: str) -> EngineAudio | None:
        with self._lock:
            audio = self._items.get(key)
            if audio is None:
                self.stats.misses += 1
                return None
            self._items.move_to_end(key)
            self.stats.hits += 1
            return audio

    def put(self, key: str, audio: EngineAudio) -> None:
        size = audio.samples.nbytes
        if size > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.samples.nbytes
            self._items[key] = audio
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.samples.nbytes

    async def lookup(self, keys: Sequence[str]) -> list[EngineAudio | None]:
        return [self.get(key) for key in keys]

    async def store(self, key: str, audio: EngineAudio) -> None:
        self.put(key, audio)

    async def close(self) -> None:
        pass
