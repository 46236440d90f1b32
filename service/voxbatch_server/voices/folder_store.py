"""Saved voices in a folder: one sub-folder per voice (voice.json, clip, prompt.bin).

A voice appears and disappears whole: it is written into a hidden temporary folder, synced, and
renamed into place (rename refuses a name that exists, so two servers sharing the folder cannot
both create one name); deletion renames it away before removing it."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import uuid
from pathlib import Path

from ..errors import AlreadyExists, StoreFull
from .store import NAME_PATTERN, SavedVoice

log = logging.getLogger(__name__)

META, CLIP, PROMPT = "voice.json", "clip", "prompt.bin"


class FolderVoiceStore:
    backend = "folder"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()  # count-then-create within this process

    async def create(self, voice: SavedVoice, max_voices: int) -> None:
        await asyncio.to_thread(self._create, voice, max_voices)

    async def get(self, name: str) -> SavedVoice | None:
        return await asyncio.to_thread(self._read, name, True)

    async def list(self) -> list[SavedVoice]:
        return await asyncio.to_thread(self._list)

    async def delete(self, name: str) -> bool:
        return await asyncio.to_thread(self._delete, name)

    async def close(self) -> None:
        pass

    # -- blocking parts ---------------------------------------------------------------------

    def _names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if NAME_PATTERN.fullmatch(p.name) and (p / META).is_file())

    def _create(self, voice: SavedVoice, max_voices: int) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / voice.name
        with self._lock:
            if final.exists():
                raise AlreadyExists(f"a voice named {voice.name!r} exists already; delete it first or pick another name")
            if len(self._names()) >= max_voices:
                raise StoreFull(f"the server holds {max_voices} saved voices, its limit; delete one first")
            temporary = self.root / f".tmp-{voice.name}-{uuid.uuid4().hex[:8]}"
            temporary.mkdir()
            try:
                for filename, data in ((CLIP, voice.clip), (PROMPT, voice.prompt), (META, voice.meta_json().encode())):
                    _write_synced(temporary / filename, data)
                _sync_dir(temporary)
                try:
                    os.rename(temporary, final)  # fails when another server created the name meanwhile
                except OSError:
                    raise AlreadyExists(f"a voice named {voice.name!r} exists already; delete it first or pick another name") from None
                _sync_dir(self.root)
            finally:
                shutil.rmtree(temporary, ignore_errors=True)

    def _read(self, name: str, with_data: bool) -> SavedVoice | None:
        if not NAME_PATTERN.fullmatch(name):
            return None
        folder = self.root / name
        try:
            meta = (folder / META).read_bytes()
            if not with_data:
                return SavedVoice.from_parts(meta)
            return SavedVoice.from_parts(meta, (folder / CLIP).read_bytes(), (folder / PROMPT).read_bytes())
        except FileNotFoundError:
            return None  # never created, or deleted meanwhile
        except (ValueError, TypeError, KeyError) as error:
            log.warning("saved voice %s in %s cannot be read (%s); skipping it", name, self.root, error)
            return None

    def _list(self) -> list[SavedVoice]:
        return [v for v in (self._read(name, False) for name in self._names()) if v is not None]

    def _delete(self, name: str) -> bool:
        folder = self.root / name
        if not NAME_PATTERN.fullmatch(name) or not (folder / META).is_file():
            return False
        doomed = self.root / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(folder, doomed)
        except FileNotFoundError:
            return False  # another server deleted it first
        _sync_dir(self.root)
        shutil.rmtree(doomed, ignore_errors=True)
        return True


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
