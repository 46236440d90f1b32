"""Script detection for the language check, and text normalisation in English and Chinese."""

from __future__ import annotations

import pytest

from voxbatch_server.languages import foreign_script
from voxbatch_server.normalize import TextNormalizer


@pytest.mark.parametrize("text", [
    "Meet 王小明 at the station at 3:30.",  # one Chinese name in an English sentence
    "Hello 😀 world, 42 times! 🎉🎉",
    "Café, naïve, Straße: Latin with accents.",
    "12345 678.",  # digits only: no letters, nothing to refuse
])
def test_english_voices_read_mixed_english_text(text):
    assert foreign_script(text, ["en"]) is None


@pytest.mark.parametrize("text, script", [
    ("你好，欢迎使用语音合成系统。", "Han"),
    ("我们在 Google 工作了三年，很开心。", "Han"),  # a Latin word in a Chinese sentence
    ("Привет, как дела?", "Cyrillic"),
    ("こんにちは、元気ですか。", "Hiragana"),
])
def test_text_mostly_in_another_script_is_found(text, script):
    problem = foreign_script(text, ["en"])
    assert problem is not None and problem.script == script and problem.share > 0.5


def test_a_chinese_and_english_voice_reads_both_and_unknown_languages_are_not_checked():
    assert foreign_script("你好，欢迎使用语音合成系统。", ["zh", "en"]) is None
    assert foreign_script("Hello there.", ["zh"]) is not None
    assert foreign_script("Привет", ["xx"]) is None


@pytest.fixture(scope="module")
def normalizer():
    return TextNormalizer()


@pytest.mark.parametrize("text, spoken", [
    ("It costs $5 and 30% off.", "It costs five dollars and thirty percent off."),
    ("Dr. Smith came at 10:30 AM.", "doctor Smith came at ten thirty AM."),
    ("We walked 5 km on Jan. 1st, 2025.", "five kilometers"),
    ("He was born in 1990, the 2nd son of 3.", "nineteen ninety"),
])
def test_english_numbers_dates_times_currencies_units_abbreviations(normalizer, text, spoken):
    assert spoken in normalizer.normalize(text)


@pytest.mark.parametrize("text, spoken", [
    ("会议在10:30开始。", "会议在十点三十分开始。"),
    ("2024年3月5日，花了¥20。", "二零二四年三月五日，花了二十元。"),
    ("距离5km，温度-3°C，打8折。", "距离五公里，温度负三摄氏度，打八折。"),
    ("增长了30%。", "增长了百分之三十。"),
])
def test_chinese_numbers_dates_times_currencies_units(normalizer, text, spoken):
    assert normalizer.normalize(text) == spoken


def test_mixed_text_takes_the_grammar_of_its_main_script(normalizer):
    assert TextNormalizer.language_of("Meet 王小明 at 3:30 pm.") == "en"
    assert TextNormalizer.language_of("我有3个apple。") == "zh"
    assert normalizer.normalize("Meet 王小明 at 3:30 pm.") == "Meet 王小明 at three thirty PM."
    assert normalizer.normalize("我有3个apple。") == "我有三个apple。"
