"""Every string of the web UI has its Chinese translation, with the same placeholders, and the
language follows the browser's Accept-Language until the person chooses one."""

from __future__ import annotations

import json

import pytest

from voxbatch_webui import i18n
from voxbatch_webui.catalog import PACKAGE, placeholders, raw_strings, source_strings


def test_every_string_in_the_source_has_a_chinese_translation_with_the_same_placeholders():
    catalogue = json.loads((PACKAGE / "locales" / "zh.json").read_text(encoding="utf-8"))
    strings = source_strings()
    assert len(strings) > 40
    missing = {text: where for text, where in strings.items() if not catalogue.get(text, "").strip()}
    assert not missing, f"untranslated (python -m voxbatch_webui.catalog zh lists them): {missing}"
    mismatched = [text for text in strings if placeholders(text) != placeholders(catalogue[text])]
    assert not mismatched, f"placeholders differ: {mismatched}"
    stale = set(catalogue) - set(strings)
    assert not stale, f"translations of strings no longer in the source: {sorted(stale)}"


def test_no_string_a_person_reads_bypasses_translation():
    assert raw_strings() == [], "wrap these in _() and translate them in locales/zh.json"


@pytest.mark.parametrize("header, language", [
    ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
    ("en-US,en;q=0.9", "en"),
    ("fr-FR,fr;q=0.9,zh-TW;q=0.8,en;q=0.5", "zh"),
    ("fr-FR,de;q=0.9", "en"),
    ("en;q=0.2, zh-Hans;q=0.8", "zh"),
    ("", "en"),
])
def test_the_browsers_first_language_we_speak_is_the_default(header, language):
    assert i18n.from_accept_language(header) == language


def test_a_text_the_voice_cannot_read_is_explained_in_plain_words():
    import grpc

    from voxbatch import InvalidRequestError
    from voxbatch_webui.backend import explain

    refusal = ("the text is mostly in Han script (Chinese characters), which voice 'joe' cannot read: "
               "it speaks en; no voice on this server reads it")
    problem = explain(InvalidRequestError(grpc.StatusCode.INVALID_ARGUMENT, refusal), "localhost:50051")
    assert problem.title == "This voice can't read this text"
    assert problem.detail == ("The text is mostly in Chinese characters, and the voice joe speaks English. "
                              "No voice on this server reads it.")
    suggested = refusal.replace("no voice on this server reads it", "voices that can: mei, default")
    assert explain(InvalidRequestError(grpc.StatusCode.INVALID_ARGUMENT, suggested), "x").detail.endswith(
        "Choose a voice that can read it: mei, default.")
