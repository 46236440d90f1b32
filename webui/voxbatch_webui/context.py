"""What every page of one web UI shares: its settings, the SDK wrapper, kept audio, histories."""

from __future__ import annotations

from dataclasses import dataclass

from .backend import Backend
from .settings import WebUISettings
from .store import AudioStore, History


@dataclass(frozen=True)
class WebUI:
    settings: WebUISettings
    backend: Backend
    store: AudioStore
    history: History

    @classmethod
    def create(cls, settings: WebUISettings) -> WebUI:
        return cls(
            settings=settings,
            backend=Backend(settings.server, settings.timeout_s),
            store=AudioStore(settings.audio_cache_mb << 20),
            history=History(settings.history_size),
        )
