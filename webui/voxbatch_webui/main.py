"""Wires the pages, the audio route and the live player into NiceGUI, and runs it."""

from __future__ import annotations

import argparse
import secrets
import sys

from nicegui import app, ui

from . import live_player, recorder
from .context import WebUI
from .pages.server import server_page
from .pages.sign_in import needs_sign_in, sign_in_page
from .pages.synthesize import synthesis_page
from .pages.voices import voices_page
from .settings import SettingsError, WebUISettings
from .store import AUDIO_ROUTE


def build(settings: WebUISettings) -> WebUI:
    """Registers everything on NiceGUI's app; `ui.run` (or the test's user simulation) serves it."""
    webui = WebUI.create(settings)
    app.add_api_route(AUDIO_ROUTE, webui.store.serve, methods=["GET"], include_in_schema=False)
    app.add_api_route(recorder.RECORDING_ROUTE, webui.recordings.receive, methods=["POST"], include_in_schema=False)
    ui.add_head_html(live_player.head_html(), shared=True)
    ui.add_head_html(recorder.head_html(), shared=True)
    app.on_shutdown(webui.backend.close)

    @ui.page("/")
    async def speak() -> None:
        if await needs_sign_in(webui):
            sign_in_page(webui, "/")
            return
        synthesis_page(webui)

    @ui.page("/server")
    async def server() -> None:
        if await needs_sign_in(webui):
            sign_in_page(webui, "/server")
            return
        server_page(webui)

    @ui.page("/voices")
    async def voices() -> None:
        if await needs_sign_in(webui):
            sign_in_page(webui, "/voices")
            return
        voices_page(webui)

    return webui


def run(settings: WebUISettings) -> None:
    build(settings)
    shown_host = "localhost" if settings.host in ("0.0.0.0", "::", "") else settings.host
    app.on_startup(lambda: print(
        f"voxbatch web UI on http://{shown_host}:{settings.port} (speech server {settings.server})", flush=True,
    ))
    ui.run(
        host=settings.host,
        port=settings.port,
        title=settings.title,
        favicon="🔊",
        reload=False,
        show=False,
        show_welcome_message=False,
        storage_secret=settings.storage_secret or secrets.token_urlsafe(32),
        uvicorn_logging_level="warning",
    )


def main(args: argparse.Namespace | list[str] | None = None) -> int:
    """`voxbatch webui` (argparse namespace from the CLI) or `python -m voxbatch_webui` (argv)."""
    try:
        if isinstance(args, argparse.Namespace):
            settings = WebUISettings.load(args)
        else:
            settings = WebUISettings.from_argv(sys.argv[1:] if args is None else args)
    except SettingsError as error:
        print(f"voxbatch webui: {error}", file=sys.stderr)
        return 2
    try:
        run(settings)
    except KeyboardInterrupt:
        pass
    return 0
