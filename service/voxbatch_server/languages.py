"""Which writing systems a voice can read, and whether a text is mostly in one it cannot.

Each character's script comes from the Unicode Character Database (unicodedataplus). Only
letters count: digits, punctuation, symbols and emoji are Common to every script and pass, so an
English sentence with one Chinese name, numbers and emoji is English text."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import unicodedataplus

# The scripts each language is written in (ISO 639-1 code -> Unicode script names), for the
# languages our engines speak. A language not listed here is not checked (any text passes).
SCRIPTS_OF_LANGUAGE: dict[str, frozenset[str]] = {
    code: frozenset(scripts)
    for code, scripts in {
        **dict.fromkeys(
            ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "no", "nb", "fi", "pl", "cs", "sk", "ro", "hu",
             "tr", "id", "ms", "vi", "sw", "tl", "hr", "sl", "lt", "lv", "et", "ca", "eu", "gl"),
            ("Latin",),
        ),
        **dict.fromkeys(("ru", "uk", "bg", "sr", "mk", "be", "kk"), ("Cyrillic",)),
        "zh": ("Han",),
        "yue": ("Han",),
        "ja": ("Han", "Hiragana", "Katakana"),
        "ko": ("Hangul", "Han"),
        "ar": ("Arabic",),
        "fa": ("Arabic",),
        "ur": ("Arabic",),
        "he": ("Hebrew",),
        "el": ("Greek",),
        "hi": ("Devanagari",),
        "mr": ("Devanagari",),
        "ne": ("Devanagari",),
        "bn": ("Bengali",),
        "ta": ("Tamil",),
        "te": ("Telugu",),
        "th": ("Thai",),
        "my": ("Myanmar",),
        "km": ("Khmer",),
        "lo": ("Lao",),
        "ka": ("Georgian",),
        "hy": ("Armenian",),
    }.items()
}
# Readers' names for the scripts people most often send by mistake, for the refusal message.
SCRIPT_HINTS = {"Han": "Chinese characters", "Hiragana": "Japanese kana", "Katakana": "Japanese kana",
                "Hangul": "Korean", "Cyrillic": "Cyrillic", "Arabic": "Arabic", "Latin": "Latin letters"}


def scripts_of(languages: Iterable[str]) -> frozenset[str] | None:
    """The scripts a voice speaking `languages` reads; None when any language is unknown here."""
    found: set[str] = set()
    for code in languages:
        scripts = SCRIPTS_OF_LANGUAGE.get(code.split("-")[0].lower())
        if scripts is None:
            return None
        found |= scripts
    return frozenset(found) if found else None


def letter_scripts(text: str) -> Counter[str]:
    """How many letters of each script the text has (Common and Inherited characters left out)."""
    counts: Counter[str] = Counter()
    for ch in text:
        if ch.isalpha():
            script = unicodedataplus.script(ch)
            if script not in ("Common", "Inherited", "Unknown"):
                counts[script] += 1
    return counts


@dataclass(frozen=True)
class ForeignScript:
    """A text whose letters are mostly in scripts a voice cannot read."""

    script: str  # the most frequent unreadable script
    share: float  # of the text's letters, in unreadable scripts

    @property
    def described(self) -> str:
        hint = SCRIPT_HINTS.get(self.script)
        return f"{self.script} script ({hint})" if hint and hint != self.script else f"{self.script} script"


def foreign_script(text: str, languages: Iterable[str]) -> ForeignScript | None:
    """The script a voice speaking `languages` cannot read, when more than half the letters are in
    such scripts; None when the voice can read the text (or its languages are not known here)."""
    readable = scripts_of(languages)
    if readable is None:
        return None
    counts = letter_scripts(text)
    total = sum(counts.values())
    foreign = Counter({script: n for script, n in counts.items() if script not in readable})
    if not total or sum(foreign.values()) * 2 <= total:
        return None
    script, _ = foreign.most_common(1)[0]
    return ForeignScript(script, sum(foreign.values()) / total)


def can_read(languages: Iterable[str], script: str) -> bool:
    readable = scripts_of(languages)
    return readable is not None and script in readable


def dominant_script(text: str) -> str | None:
    counts = letter_scripts(text)
    return counts.most_common(1)[0][0] if counts else None
