"""Text checks and sentence splitting. Offsets are Unicode code points into the request text."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import InvalidInput

# A sentence ends at . ! ? … (and their CJK forms), optionally followed by closing quotes or
# brackets, then whitespace; a blank line always ends one.
_SENTENCE_END = re.compile(r"""(?<=[.!?…。！？])["'”’)\]]*\s+|\n\s*\n""")
_SOFT_BREAK = re.compile(r"(?<=[,;:，；：])\s+|\s+")


@dataclass(frozen=True)
class Sentence:
    index: int
    start: int
    end: int
    text: str


def clean_text(text: str, max_chars: int) -> str:
    """Replace control characters with spaces and check the result has something to say."""
    if len(text) > max_chars:
        raise InvalidInput(f"text is {len(text)} characters long; the limit is {max_chars}")
    cleaned = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Cf", "Cs") and ch not in "\n\t" else ch for ch in text
    )
    if not cleaned.strip():
        raise InvalidInput("text is empty or only whitespace; give the words to speak")
    if not any(ch.isalnum() for ch in cleaned):
        raise InvalidInput("text has no letters or digits to speak")
    return cleaned


def split_sentences(text: str, max_sentence_chars: int = 400) -> list[Sentence]:
    """Sentences of `text` with their spans. Pieces without a letter or digit join a neighbour,
    and over-long sentences are cut at commas, then at spaces, so no piece exceeds the limit."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    pieces: list[tuple[int, int]] = []
    for s, e in spans:
        s, e = _strip(text, s, e)
        if s < e:
            pieces.extend(_cut_long(text, s, e, max_sentence_chars))
    merged: list[list[int]] = []
    for s, e in pieces:
        speakable = any(ch.isalnum() for ch in text[s:e])
        if merged and (not speakable or not _speakable(text, *merged[-1])):
            merged[-1][1] = e
        else:
            merged.append([s, e])
    return [Sentence(i, s, e, text[s:e]) for i, (s, e) in enumerate(merged)]


def _speakable(text: str, start: int, end: int) -> bool:
    return any(ch.isalnum() for ch in text[start:end])


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _cut_long(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    pieces = []
    while end - start > limit:
        window = text[start : start + limit]
        breaks = [m.end() for m in _SOFT_BREAK.finditer(window) if m.end() > limit // 3]
        commas = [b for b in breaks if window[: b].rstrip()[-1:] in ",;:，；："]
        cut = start + (commas[-1] if commas else breaks[-1] if breaks else limit)
        s, e = _strip(text, start, cut)
        if s < e:
            pieces.append((s, e))
        start, end = _strip(text, cut, end)
    if start < end:
        pieces.append((start, end))
    return pieces
