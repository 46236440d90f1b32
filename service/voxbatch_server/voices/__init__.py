"""Saved voices: a library of cloned voices that requests use by name.

store.py defines what is stored and the interface; folder_store.py (one server's --voices-dir)
and redis_store.py (shared by replicas) implement it; library.py validates, encodes once and
resolves names for the synthesis pipeline."""

from .library import VoiceLibrary, make_voice_store
from .store import SavedVoice, VoiceStore

__all__ = ["SavedVoice", "VoiceLibrary", "VoiceStore", "make_voice_store"]
