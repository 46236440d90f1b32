"""Where the UI keeps audio between making it and a browser fetching it, and each browser
session's history. Both live in memory, bounded, and are owned by the app (no module state)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import Response

AUDIO_ROUTE = "/audio/{key}"


@dataclass(frozen=True)
class StoredAudio:
    data: bytes
    media_type: str
    filename: str


class AudioStore:
    """Audio bytes under unguessable keys, served at /audio/KEY (add ?download=1 to save it).
    The oldest entries go first when the byte budget is spent."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._items: OrderedDict[str, StoredAudio] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, data: bytes, media_type: str, filename: str) -> str:
        key = secrets.token_urlsafe(16)
        with self._lock:
            self._items[key] = StoredAudio(data, media_type, filename)
            self._bytes += len(data)
            while self._bytes > self.budget_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= len(old.data)
        return key

    def get(self, key: str) -> StoredAudio | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._items

    @staticmethod
    def url(key: str, download: bool = False) -> str:
        return f"/audio/{key}" + ("?download=1" if download else "")

    async def serve(self, key: str, request: Request) -> Response:
        """The route handler; answers byte ranges so that players can seek."""
        item = self.get(key)
        if item is None:
            raise HTTPException(status_code=404, detail="this audio is no longer kept; make it again")
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=3600"}
        if request.query_params.get("download"):
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(item.filename)}"
        data, status = item.data, 200
        wanted = _byte_range(request.headers.get("range", ""), len(data))
        if wanted is not None:
            start, end = wanted
            headers["Content-Range"] = f"bytes {start}-{end}/{len(item.data)}"
            data, status = data[start : end + 1], 206
        return Response(content=data, status_code=status, media_type=item.media_type, headers=headers)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single 'bytes=A-B' range, or None for the whole file."""
    if not header.startswith("bytes=") or "," in header or size == 0:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first:
            start, end = int(first), int(last) if last else size - 1
        else:
            start, end = max(0, size - int(last)), size - 1
    except ValueError:
        return None
    if start > end or start >= size:
        return None
    return start, min(end, size - 1)


@dataclass(frozen=True)
class HistoryEntry:
    """One result: its text and settings, its figures, and where its audio is."""

    text: str
    voice: str
    format_label: str
    duration_s: float
    play_key: str
    download_key: str
    filename: str
    figures: dict[str, str]
    streamed: bool
    made_at: float = field(default_factory=time.time)

    @property
    def made_at_text(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.made_at))


class History:
    """Each browser session's results, newest first, at most `size` each; the sessions seen
    least recently are forgotten past `max_sessions`."""

    def __init__(self, size: int, max_sessions: int = 1000) -> None:
        self.size = size
        self.max_sessions = max_sessions
        self._by_session: OrderedDict[str, deque[HistoryEntry]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, session: str, entry: HistoryEntry) -> None:
        with self._lock:
            self._by_session.setdefault(session, deque(maxlen=self.size)).appendleft(entry)
            self._by_session.move_to_end(session)
            while len(self._by_session) > self.max_sessions:
                self._by_session.popitem(last=False)

    def entries(self, session: str) -> list[HistoryEntry]:
        with self._lock:
            return list(self._by_session.get(session, ()))
