"""Where `voxbatch say` writes its audio: a file (written whole or not at all) or standard output.

The audio goes to a temporary file next to the target, which replaces the target only when the
call succeeded: a failed or interrupted call leaves an existing file as it was.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

SUFFIX_ENCODINGS = {
    ".wav": "wav", ".flac": "flac", ".ogg": "ogg_opus", ".opus": "ogg_opus", ".mp3": "mp3",
    ".pcm": "pcm_s16le", ".raw": "pcm_s16le",
}


class OutputError(Exception):
    """The output cannot be written as asked; the message says why and what to do."""


class AudioOutput:
    """`-o PATH` or `-o -` (standard output), with the encoding its suffix or --format picks."""

    def __init__(self, spec: str, encoding: str | None) -> None:
        self.path = None if spec == "-" else Path(spec)
        if self.path is not None:
            if self.path.is_dir():
                raise OutputError(f"-o {spec} is a folder; name a file in it, such as {self.path / 'out.wav'}")
            folder = self.path.parent
            if not folder.is_dir():
                raise OutputError(f"cannot write {spec}: the folder {folder} does not exist; create it first")
            if not os.access(folder, os.W_OK):
                raise OutputError(f"cannot write {spec}: the folder {folder} is not writable")
        if encoding is None:
            suffix = self.path.suffix.lower() if self.path is not None else ""
            if suffix and suffix not in SUFFIX_ENCODINGS:
                raise OutputError(
                    f"cannot tell the audio format from the suffix {suffix!r} of {spec}; use one of "
                    f"{', '.join(SUFFIX_ENCODINGS)}, or give --format"
                )
            encoding = SUFFIX_ENCODINGS.get(suffix, "wav")
        self.encoding = encoding

    @property
    def name(self) -> str:
        return "standard output" if self.path is None else str(self.path)

    @contextlib.contextmanager
    def open(self, streamed_wav: bool = False) -> Iterator[BinaryIO]:
        """The file to write; it replaces the target only if the block ends without an error.
        With `streamed_wav`, the WAV header's length fields are filled in at the end."""
        if self.path is None:
            yield sys.stdout.buffer
            sys.stdout.buffer.flush()
            return
        partial = tempfile.NamedTemporaryFile(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".part", delete=False)
        try:
            with partial:
                yield partial
                if streamed_wav:
                    fill_wav_lengths(partial)
            os.chmod(partial.name, _mode_for(self.path))
            os.replace(partial.name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(partial.name)
            raise


def fill_wav_lengths(f: BinaryIO) -> None:
    """Put the real sizes into a streamed WAV's RIFF and data headers (streamed as 0xFFFFFFFF,
    since the length was unknown), so that every player reads the file's true duration."""
    size = f.seek(0, os.SEEK_END)
    f.seek(0)
    if size < 12 or f.read(4) != b"RIFF":
        return
    f.seek(4)
    f.write(struct.pack("<I", min(size - 8, 0xFFFFFFFF)))
    position = 12
    while position + 8 <= size:
        f.seek(position)
        chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
        if chunk_id == b"data":
            f.seek(position + 4)
            f.write(struct.pack("<I", min(size - position - 8, 0xFFFFFFFF)))
            return
        position += 8 + chunk_size + (chunk_size & 1)


def _mode_for(path: Path) -> int:
    """Keep an existing file's permissions; a new file gets the usual ones (0666 less the umask)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
