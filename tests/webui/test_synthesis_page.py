"""The synthesis page against a real server on the embedded Piper voice, as a simulated person
uses it: what the form offers, making audio, streaming, the history, and the character limit."""

from __future__ import annotations

import io

import pytest
import soundfile as sf
from nicegui import ui

from voxbatch import Encoding

from .helpers import one, rms_of, see, texts


@pytest.fixture
def webui_target(piper_server) -> str:
    return piper_server.target


async def test_the_form_offers_what_the_engine_supports(user):
    await user.open("/")
    await see(user, "0 / 5,000 characters")
    voice = one(user, "voice")
    assert voice.value == "joe" or "joe" in str(voice.value)
    await see(user, marker="param-speaking_rate")
    await see(user, marker="param-temperature")
    for unsupported in ("cfg_value", "inference_steps", "seed"):
        await user.should_not_see(marker=f"param-{unsupported}")
    await user.should_not_see(marker="cloning")  # Piper does not clone voices
    await user.should_not_see(marker="instructions")  # nor follow instructions
    assert set(one(user, "format").options.values()) == {"WAV", "FLAC", "Ogg/Opus", "MP3", "Raw PCM (16-bit)"}
    assert one(user, "param-speaking_rate").props["min"] == 0.25 and one(user, "param-speaking_rate").props["max"] == 4.0


async def test_synthesize_plays_and_downloads_the_audio_with_its_figures(user):
    await user.open("/")
    await see(user, marker="text")
    user.find(marker="stream").click()  # unary Synthesize this time
    user.find(marker="text").type("The quick brown fox jumps over the lazy dog.")
    await see(user, "44 / 5,000 characters")
    user.find(marker="synthesize").click()
    await see(user, marker="result-audio")
    assert one(user, "result-audio").props["src"].startswith("/audio/")
    for figure in ("Duration", "Queue wait", "Batch size", "Real-time factor"):
        await see(user, marker=f"figure-{figure.lower().replace(' ', '-')}")
    user.find(marker="result-download").click()
    response = await user.download.next(timeout=10)
    assert response.status_code == 200
    seconds, rms = rms_of(response.content)
    assert seconds > 1.0 and rms > 0.01
    assert len(list(user.find(marker="history-entry").elements)) == 1


async def test_a_long_text_streams_sentence_by_sentence_into_one_file(user):
    await user.open("/")
    await see(user, marker="text")
    one(user, "format").set_value(int(Encoding.MP3))
    sentences = ["First we open the box.", "Then we read the letter inside.", "Finally we write a short answer."]
    user.find(marker="text").type(" ".join(sentences))
    user.find(marker="synthesize").click()
    await see(user, marker="result-audio")
    await see(user, marker="figure-first-audio")
    await see(user, "joe · MP3", kind=ui.label)
    assert any("streamed" in t for t in texts(user, "history-entry-meta"))
    user.find(marker="result-download").click()
    response = await user.download.next(timeout=10)
    seconds, rms = rms_of(response.content)
    assert seconds > 3.0 and rms > 0.01
    assert "attachment" in response.headers["content-disposition"] and ".mp3" in response.headers["content-disposition"]


async def test_the_button_cannot_be_fired_twice(user):
    await user.open("/")
    await see(user, marker="text")
    user.find(marker="text").type("Only one of these, please.")
    user.find(marker="synthesize").click()
    user.find(marker="synthesize").click()
    await see(user, marker="result-audio")
    await user.should_not_see(marker="problem")
    assert len(list(user.find(marker="history-entry").elements)) == 1


async def test_history_keeps_every_result_of_the_session(user):
    await user.open("/")
    await see(user, marker="text")
    for i, text in enumerate(("One for the history.", "Two for the history.")):
        user.find(marker="text").clear().type(text)
        user.find(marker="synthesize").click()
        await see(user, marker=f"history-audio-{i}")
    await user.open("/")  # a reload keeps the browser session's history
    await see(user, "Two for the history.")
    await see(user, "One for the history.")
    user.find(marker="history-download-1").click()
    response = await user.download.next(timeout=10)
    assert rms_of(response.content)[1] > 0.01


async def test_a_text_over_the_limit_is_explained_and_cannot_be_sent(user):
    await user.open("/")
    await see(user, marker="text")
    one(user, "text").set_value("a" * 5003)
    await see(user, "5,003 / 5,000 characters")
    await see(user, "Too long by 3 characters: shorten the text or split it into parts.")
    assert not one(user, "synthesize").enabled


async def test_format_and_sample_rate_reach_the_file(user):
    await user.open("/")
    await see(user, marker="text")
    one(user, "format").set_value(int(Encoding.OGG_OPUS))
    assert set(one(user, "sample-rate").options) == {0, 8000, 12000, 16000, 24000, 48000}  # what Opus carries
    one(user, "sample-rate").set_value(24000)
    user.find(marker="text").type("Opus at twenty four kilohertz.")
    user.find(marker="synthesize").click()
    await see(user, marker="result-audio")
    user.find(marker="result-download").click()
    response = await user.download.next(timeout=10)
    info = sf.info(io.BytesIO(response.content))
    assert info.format == "OGG" and info.samplerate == 24000


async def test_raw_pcm_downloads_as_pcm_and_plays_as_wav(user):
    await user.open("/")
    await see(user, marker="text")
    one(user, "format").set_value(int(Encoding.PCM_S16LE))
    user.find(marker="text").type("Raw samples for an engineer.")
    user.find(marker="synthesize").click()
    await see(user, marker="result-audio")
    player = await user.http_client.get(one(user, "result-audio").props["src"])
    assert player.headers["content-type"] == "audio/wav" and rms_of(player.content)[1] > 0.01
    partial = await user.http_client.get(one(user, "result-audio").props["src"], headers={"Range": "bytes=0-43"})
    assert partial.status_code == 206 and partial.content[:4] == b"RIFF" and len(partial.content) == 44  # players can seek
    user.find(marker="result-download").click()
    response = await user.download.next(timeout=10)
    assert "22050hz.pcm" in response.headers["content-disposition"]
    assert len(response.content) == len(player.content) - 44  # the same samples without a header


async def test_a_faster_speaking_rate_gives_shorter_speech(user):
    await user.open("/")
    await see(user, marker="text")
    text = "Speaking rate changes how long this sentence takes to say."
    durations = []
    for rate in (1.0, 2.0):
        one(user, "param-speaking_rate").set_value(rate)
        user.find(marker="text").clear().type(text)
        user.find(marker="synthesize").click()
        await see(user, marker=f"history-audio-{len(durations)}")
        user.find(marker="result-download").click()
        durations.append(rms_of((await user.download.next(timeout=10)).content)[0])
    assert durations[1] < durations[0] * 0.7
    user.find(marker="reset-parameters").click()
    assert one(user, "param-speaking_rate").value == 1.0
    await see(user, "1 (default)")
