"""Text checks and sentence splitting. Offsets are Unicode code points into the request text."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .errors import InvalidInput

# Sentence boundaries come from sentencex (Wikimedia's rule-based segmenter: abbreviations,
# decimals, closing quotes, and full-width 。！？ with or without a space after them); a blank line
# always ends a sentence as well.
_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")
# Where an over-long sentence may be cut, best first: after clause punctuation (full-width marks
# need no space after them), then at whitespace.
_CLAUSE_BREAK = re.compile(r"[,;:](?=\s)\s*|[，、；：،؛]\s*")
_SPACE_BREAK = re.compile(r"\s+")
_SEGMENTER_LANGUAGE = "en"  # its rules for the CJK terminators hold in every language

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
    and over-long sentences are cut at clause punctuation, then at spaces, so no piece exceeds
    the limit."""
    pieces: list[tuple[int, int]] = []
    for s, e in _sentence_spans(text):
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


def group_sentences(text: str, sentences: list[Sentence], target_chars: int, ramp: bool = False) -> list[Sentence]:
    """Consecutive sentences joined into work items of up to `target_chars` (a longer sentence
    is an item of its own). With `ramp` (streams) the first item is the first sentence alone and
    the next two hold up to a quarter and a half of `target_chars`: the first audio comes early,
    and each item is ready before the audio before it has played. Each item's span covers its
    sentences."""
    caps = (0, target_chars // 4, target_chars // 2) if ramp else ()
    groups: list[list[int]] = []
    for sentence in sentences:
        if groups:
            last = len(groups) - 1
            cap = caps[last] if last < len(caps) else target_chars
            if sentence.end - groups[-1][0] <= cap:
                groups[-1][1] = sentence.end
                continue
        groups.append([sentence.start, sentence.end])
    return [Sentence(i, s, e, text[s:e]) for i, (s, e) in enumerate(groups)]


def max_work_items(max_text_chars: int, target_chars: int) -> int:
    """The most work items `group_sentences` can make of a text of `max_text_chars`.

    Two neighbouring full-size items could not be joined, so together they span more than
    target_chars; the pairs (4th, 5th), (6th, 7th), ... are disjoint, which bounds their number.
    Three more for the ramp of a stream.
    """
    return 2 * (max_text_chars // (target_chars + 1)) + 4


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    from sentencex import segment

    spans: list[tuple[int, int]] = []
    offset = 0
    for piece in segment(_SEGMENTER_LANGUAGE, text):
        start = text.find(piece, offset)
        if start < 0:  # the segmenter changed the text; keep what is left as one sentence
            break
        offset = start + len(piece)
        spans.extend(_paragraphs(text, start, offset))
    if offset < len(text):
        spans.extend(_paragraphs(text, offset, len(text)))
    return spans


def _paragraphs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    for match in _PARAGRAPH.finditer(text, start, end):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, end))
    return spans


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
        cut = start + _best_cut(text[start : start + limit + 1], limit)
        s, e = _strip(text, start, cut)
        if s < e:
            pieces.append((s, e))
        start, end = _strip(text, cut, end)
    if start < end:
        pieces.append((start, end))
    return pieces


def _best_cut(window: str, limit: int) -> int:
    """Where to cut a window of an over-long sentence: after the last clause mark, else at the
    last space, else between two characters that are not one word's letters (or, for a script
    without spaces such as Chinese, any two characters), in the last two thirds of the window."""
    floor = limit // 3
    for pattern in (_CLAUSE_BREAK, _SPACE_BREAK):
        cuts = [m.end() for m in pattern.finditer(window) if floor < m.end() <= limit]
        if cuts:
            return cuts[-1]
    for cut in range(limit, floor, -1):
        before, after = window[cut - 1], window[cut]
        if unicodedata.combining(after):
            continue
        if before.isascii() and after.isascii() and before.isalnum() and after.isalnum():
            continue  # inside a word of a spaced script
        return cut
    return limit
