from __future__ import annotations

import pytest

from voxbatch_server.errors import InvalidInput
from voxbatch_server.text import clean_text, split_sentences


def test_sentences_carry_their_spans_in_the_original_text():
    text = "Hello world.  How are you?\nFine!"
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == ["Hello world.", "How are you?\nFine!"] or [s.text for s in sentences] == [
        "Hello world.", "How are you?", "Fine!"
    ]
    for s in sentences:
        assert text[s.start : s.end] == s.text
    assert [s.index for s in sentences] == list(range(len(sentences)))


def test_paragraph_breaks_end_sentences_even_without_punctuation():
    assert [s.text for s in split_sentences("Title line\n\nBody text here")] == ["Title line", "Body text here"]


def test_long_sentences_are_cut_at_commas_and_never_exceed_the_limit():
    text = "one two three, " * 60
    sentences = split_sentences(text, max_sentence_chars=100)
    assert all(len(s.text) <= 100 for s in sentences)
    assert all(s.text.endswith(",") for s in sentences[:-1])
    assert "".join(s.text.replace(" ", "") for s in sentences) == text.replace(" ", "")


def test_pieces_without_words_join_a_neighbour():
    sentences = split_sentences("Hello. !!! ... World.")
    assert all(any(ch.isalnum() for ch in s.text) for s in sentences)
    assert len(sentences) == 2


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "!!! ???", "\x00\x01"])
def test_text_without_anything_to_say_is_refused(text):
    with pytest.raises(InvalidInput):
        clean_text(text, 100)


def test_text_over_the_limit_is_refused_with_both_numbers():
    with pytest.raises(InvalidInput, match="101 characters.*limit is 100"):
        clean_text("a" * 101, 100)


def test_control_characters_become_spaces():
    assert clean_text("a\x00b\x07c\nd", 100) == "a b c\nd"


def test_mixed_scripts_and_emoji_keep_their_offsets():
    text = "Grüße 😀 aus Köln. 你好。Done!"
    for s in split_sentences(clean_text(text, 100)):
        assert text[s.start : s.end] == s.text
