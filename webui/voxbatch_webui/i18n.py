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


def current() -> str:
    """The language of the page being built or handled (English outside any page)."""
    try:
        client = context.client
    except RuntimeError:  # no page: a background task, start-up
        return DEFAULT
    chosen = _stored_choice()
    if chosen in LANGUAGES:
        return chosen
    request = getattr(client, "request", None)
    header = request.headers.get("accept-language", "") if request is not None else ""
    return from_accept_language(header) if header else DEFAULT


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


def plural(count: int, one: str, many: str, /, **values: object) -> str:
    """English singular or plural, by count; Chinese has one form (the `many` entry)."""
    return _(one if count == 1 else many, count=count, **values)
