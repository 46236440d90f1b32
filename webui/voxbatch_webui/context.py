"""What every page of one web UI shares: its settings, the SDK wrapper, kept audio, histories."""

from __future__ import annotations

from dataclasses import dataclass

from .backend import Backend
from .session import KEYRING
from .recorder import RecordingInbox
from .settings import WebUISettings
from .store import AudioStore, History


@dataclass(frozen=True)
class WebUI:
    settings: WebUISettings
    backend: Backend
    store: AudioStore
    history: History
    recordings: RecordingInbox

    @classmethod
    def create(cls, settings: WebUISettings) -> WebUI:
        webui = cls(
            settings=settings,
            backend=Backend(settings.server, settings.timeout_s, KEYRING.current, settings.ca_file),
            store=AudioStore(settings.audio_cache_mb << 20),
            history=History(settings.history_size),
            recordings=RecordingInbox(),
        )
        KEYRING.on_sign_out.append(webui.backend.forget)
        return webui
