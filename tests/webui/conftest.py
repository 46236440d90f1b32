"""Fixtures of the web UI tests: a simulated user on the UI (NiceGUI's user simulation, no
browser) talking to a real server on a loopback port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nicegui.testing import User
from nicegui.testing.user_simulation import user_simulation

MAIN_FILE = Path(__file__).with_name("webui_main.py")


@pytest.fixture
def webui_settings() -> dict[str, str]:
    """Extra VOXBATCH_WEBUI_* settings for the UI under test; modules override it."""
    return {"refresh_s": "0.2"}


@pytest.fixture
async def user(webui_target: str, webui_settings: dict[str, str], monkeypatch, caplog) -> AsyncIterator[User]:
    """A simulated person on the web UI; `webui_target` (defined by each module) is its server."""
    monkeypatch.setenv("VOXBATCH_WEBUI_SERVER", webui_target)
    for name, value in webui_settings.items():
        monkeypatch.setenv(f"VOXBATCH_WEBUI_{name.upper()}", value)
    async with user_simulation(main_file=MAIN_FILE) as simulated:
        yield simulated
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith(("nicegui", "voxbatch_webui"))]
    assert not errors, f"the web UI logged errors: {[r.getMessage() for r in errors]}"
