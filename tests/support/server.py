"""Runs a real voxbatch server on a loopback port in a background thread, for tests."""

from __future__ import annotations

import asyncio
import threading

from voxbatch_server.engines import Engine
from voxbatch_server.server import RunningServer, start_server
from voxbatch_server.settings import Settings


class ServerThread:
    def __init__(self, engine: Engine, **settings) -> None:
        # No metrics endpoint unless a test asks for one: servers in one process would compete for the port.
        self.settings = Settings(**{"host": "127.0.0.1", "port": 0, "metrics_port": 0, **settings})
        self.engine = engine
        self.loop = asyncio.new_event_loop()
        self.running: RunningServer | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="test-server", daemon=True)

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(60)
        if self._error:
            raise self._error
        return self

    def __exit__(self, *exc) -> None:
        self.stop(grace=0.5)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    @property
    def batcher(self):
        return self.running.batcher

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.running = self.loop.run_until_complete(start_server(self.settings, self.engine))
        except BaseException as error:  # noqa: BLE001 - reported to the test thread
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, grace: float = 0.5) -> None:
        if self.running is None or not self._thread.is_alive():
            return
        self.call(self.running.stop(grace), timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.running = None
