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


# -- full-width punctuation, clause cuts, work items -------------------------------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from voxbatch_server.text import group_sentences, max_work_items  # noqa: E402


@pytest.mark.parametrize(
    "text, expected",
    [
        ("你好。再见。", ["你好。", "再见。"]),
        ("你好。 再见。", ["你好。", "再见。"]),
        ("今日は。元気ですか？はい！", ["今日は。", "元気ですか？", "はい！"]),
        ("他说：“你好。”然后走了。", ["他说：“你好。”", "然后走了。"]),
        ("Dr. Smith paid 3.5 dollars. Then he left.", ["Dr. Smith paid 3.5 dollars.", "Then he left."]),
    ],
)
def test_sentences_end_at_full_width_punctuation_without_a_space_and_not_at_abbreviations(text, expected):
    assert [s.text for s in split_sentences(text)] == expected


def test_a_long_chinese_sentence_is_cut_at_its_clause_marks_never_inside_the_text_between_them():
    clause = "我们今天去公园散步然后吃饭"  # 13 characters, no punctuation inside
    text = "，".join([clause] * 52) + "。"  # one 728-character sentence
    pieces = split_sentences(text, max_sentence_chars=400)
    assert len(pieces) >= 2 and all(len(p.text) <= 400 for p in pieces)
    assert all(p.text.endswith("，") for p in pieces[:-1])  # every cut follows a full-width comma
    assert "".join(p.text for p in pieces) == text


def test_clause_punctuation_wins_over_a_later_space():
    text = "word " * 10 + "then a clause; " + "and more words to follow here " * 4
    pieces = split_sentences(text.strip(), max_sentence_chars=120)
    assert pieces[0].text.endswith(";")


def test_a_cut_without_spaces_or_marks_never_splits_a_latin_word():
    text = "日本語" * 15 + "internationalization" + "日本語" * 20  # no spaces, no punctuation
    pieces = split_sentences(text, max_sentence_chars=60)
    assert all(len(p.text) <= 60 for p in pieces) and "".join(p.text for p in pieces) == text
    assert any("internationalization" in p.text for p in pieces)


def test_short_sentences_are_grouped_into_work_items_near_the_target_length():
    text = "Hi there. " * 637
    items = group_sentences(text, split_sentences(text), 200)
    assert 20 <= len(items) <= 40 and all(len(i.text) <= 200 for i in items)
    assert all(text[i.start : i.end] == i.text for i in items)
    streamed = group_sentences(text, split_sentences(text), 200, ramp=True)
    assert streamed[0].text == "Hi there."  # then a quarter, a half, and the full length
    assert [len(i.text) for i in streamed[1:4]] == [49, 99, 199]


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 450), min_size=1, max_size=60),
    target=st.integers(20, 400),
    ramp=st.booleans(),
)
def test_the_work_item_bound_holds_for_any_mix_of_sentence_lengths(sizes, target, ramp):
    text = " ".join("a" * (n - 1) + "." for n in sizes)
    items = group_sentences(text, split_sentences(text, 400), target, ramp=ramp)
    assert len(items) <= max_work_items(len(text), target)
