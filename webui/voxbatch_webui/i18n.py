"""The web UI's languages: English (the source) and Simplified Chinese.

Every string a person reads goes through `_()`, keyed by its English text:

    ui.label(_("Speak"))
    ui.label(_("The clip is {seconds} s long.", seconds=3.2))   # placeholders are filled after translating

locales/zh.json maps each English string to its Chinese; a test extracts every `_()` string from
the package and fails when one has no translation, so a new string cannot ship in English only.
The language is the one the person chose with the switch in the header (kept in their user
storage), else the first of their browser's languages (Accept-Language) that we speak, else English.
"""

from __future__ import annotations

import contextvars
import json
import logging
from functools import cache
from pathlib import Path

from nicegui import app, context

log = logging.getLogger(__name__)

LANGUAGES = {"en": "English", "zh": "中文"}
DEFAULT = "en"
STORAGE_KEY = "language"
LOCALES = Path(__file__).with_name("locales")


@cache
def catalog(language: str) -> dict[str, str]:
    """English -> `language`; empty for English itself."""
    if language == DEFAULT:
        return {}
    return json.loads((LOCALES / f"{language}.json").read_text(encoding="utf-8"))


def from_accept_language(header: str) -> str:
    """The first language of an Accept-Language header we speak (zh-CN, zh-Hans, zh... -> zh)."""
    weighted = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        weighted.append((-quality, position, tag.strip().lower()))
    for _quality, _position, tag in sorted(weighted):
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT


# The language last found for the code running now. Tasks a page handler starts (a stream being
# consumed) copy it, so they speak the page's language though NiceGUI cannot name their client.
_LANGUAGE: contextvars.ContextVar[str] = contextvars.ContextVar("voxbatch_webui_language", default=DEFAULT)


def current() -> str:
    """The language of the page being built or handled (English outside any page)."""
    try:
        client = context.client
    except RuntimeError:  # no page: a task started by a page handler, or start-up
        return _LANGUAGE.get()
    chosen = _stored_choice()
    if chosen in LANGUAGES:
        language = chosen
    else:
        try:
            request = client.request
        except RuntimeError:  # a client outside any request (NiceGUI's auto-index outside a page)
            return _LANGUAGE.get()
        header = request.headers.get("accept-language", "") if request is not None else ""
        language = from_accept_language(header) if header else DEFAULT
    _LANGUAGE.set(language)
    return language


def choose(language: str) -> None:
    """Remember the person's choice (the page is then reloaded by the caller)."""
    if language in LANGUAGES:
        app.storage.user[STORAGE_KEY] = language


def _stored_choice() -> str | None:
    try:
        return app.storage.user.get(STORAGE_KEY)
    except (RuntimeError, AssertionError, KeyError):  # storage not available for this request
        return None


def _(text: str, /, **values: object) -> str:
    """`text` in the current language, with `{name}` placeholders filled from `values`."""
    translated = catalog(current()).get(text, text) if text else text
    return translated.format(**values) if values else translated


def N_(text: str, /) -> str:
    """Marks a string for translation where it is defined (a table at module level); it is
    translated where it is shown, with `_(variable)`."""
    return text


# Names of the languages voices declare and of the scripts texts are written in, shown translated.
LANGUAGE_NAMES = {"en": N_("English"), "zh": N_("Chinese"), "ja": N_("Japanese"), "ko": N_("Korean"),
                  "fr": N_("French"), "de": N_("German"), "es": N_("Spanish"), "ru": N_("Russian")}
SCRIPT_NAMES = {"Han": N_("Chinese characters"), "Latin": N_("Latin letters"), "Cyrillic": N_("Cyrillic letters"),
                "Hiragana": N_("Japanese kana"), "Katakana": N_("Japanese kana"), "Hangul": N_("Korean Hangul"),
                "Arabic": N_("Arabic script"), "Greek": N_("Greek letters"), "Hebrew": N_("Hebrew script")}


def language_name(code: str) -> str:
    return _(LANGUAGE_NAMES[code]) if code in LANGUAGE_NAMES else code


def script_name(script: str) -> str:
    return _(SCRIPT_NAMES[script]) if script in SCRIPT_NAMES else _("{script} script", script=script)


def plural(count: int, one: str, many: str, /, **values: object) -> str:
    """English singular or plural, by count; Chinese has one form (the `many` entry)."""
    values.setdefault("count", count)  # callers may pass it formatted (1,024)
    return _(one if count == 1 else many, **values)
