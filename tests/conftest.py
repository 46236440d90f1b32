from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def piper_engine():
    from voxbatch_server.engines.piper_engine import PiperEngine

    return PiperEngine()


@pytest.fixture(scope="session")
def piper_server(piper_engine):
    """One real server on the embedded voice, shared by the read-only tests."""
    from tests.support.server import ServerThread

    with ServerThread(piper_engine, cache_mb=64) as server:
        yield server


@pytest.fixture
def redis_server():
    """A fresh redis-server on a free loopback port (tests/ops/support.py), stopped after the test."""
    from tests.ops.support import RedisServer

    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()
