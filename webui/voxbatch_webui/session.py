"""Who is signed in: each browser session's API key, kept in this process's memory only.

The key never goes into a page, a URL or NiceGUI's storage files: the browser holds only NiceGUI's
signed session cookie, whose id maps to the key here. Restarting the web UI signs everybody out.
Failed sign-ins are limited per browser address here, before they reach the server, so that one
person guessing cannot make the server refuse the web UI's own address for everybody."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MAX_FAILURES = 5  # failed sign-ins per address per window
FAILURE_WINDOW_S = 60.0


class KeyRing:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._keys: dict[str, str] = {}
        self._failures: dict[str, deque[float]] = {}
        self._clock = clock
        self.on_sign_out: list[Callable[[str], None]] = []  # the backend drops the key's connections

    @staticmethod
    def _session_id() -> str:
        from nicegui import app

        return str(app.storage.browser.get("id", ""))

    def current(self) -> str:
        """The API key of the browser session being served ("" when not signed in)."""
        return self._keys.get(self._session_id(), "")

    def sign_in(self, key: str) -> None:
        self._keys[self._session_id()] = key

    def sign_out(self) -> None:
        key = self._keys.pop(self._session_id(), "")
        if key:
            for listener in self.on_sign_out:
                listener(key)

    def wait_s(self, address: str) -> float:
        """Seconds `address` must wait before trying to sign in again (0: it may try now)."""
        failures = self._failures.get(address)
        if not failures:
            return 0.0
        now = self._clock()
        while failures and now - failures[0] >= FAILURE_WINDOW_S:
            failures.popleft()
        return FAILURE_WINDOW_S - (now - failures[0]) if len(failures) >= MAX_FAILURES else 0.0

    def failed(self, address: str) -> None:
        self._failures.setdefault(address, deque()).append(self._clock())


KEYRING = KeyRing()
