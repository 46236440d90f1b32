from __future__ import annotations

import pytest

from .support import RedisServer


@pytest.fixture
def redis_server():
    """A fresh redis-server on a free loopback port, stopped after the test."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.close()
