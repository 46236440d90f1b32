"""Voice cloning in the UI, against ToneEngine(cloning=True): upload a clip, hear it, type its
words, synthesize; and the explanations a person gets for clips the server refuses."""

from __future__ import annotations

import pytest
from nicegui import ui

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread

from .helpers import one, see, tone_wav


@pytest.fixture(scope="module")
def cloning_server():
    with ServerThread(ToneEngine(cloning=True), cache_mb=0) as server:
        yield server


@pytest.fixture
def webui_target(cloning_server) -> str:
    return cloning_server.target


async def upload(user, name: str, data: bytes, content_type: str = "audio/wav") -> None:
    await one(user, "reference-upload").handle_uploads([ui.upload.SmallFileUpload(name, content_type, data)])


async def test_a_clip_is_uploaded_heard_and_used(user):
    await user.open("/")
    await see(user, marker="cloning")
    await see(user, "Clone a voice from a recording")
    await upload(user, "my-voice.wav", tone_wav(1.5))
    await see(user, "my-voice.wav: 1.5 s, 16,000 Hz")
    await user.should_not_see(marker="reference-upload")  # one clip at a time
    preview = await user.http_client.get(one(user, "reference-audio").props["src"])
    assert preview.status_code == 200 and preview.content == tone_wav(1.5)  # the player plays the clip itself

    user.find(marker="text").type("Speak like the clip.")
    user.find(marker="synthesize").click()
    await see(user, "The reference clip needs its words")  # no transcript typed yet
    user.find(marker="reference-transcript").type("A steady hum.")
    user.find(marker="synthesize").click()
    await see(user, marker="result-audio")
    await see(user, "tone (cloned)", kind=ui.label)
    await user.should_not_see(marker="problem")


async def test_a_file_that_is_not_audio_is_explained(user):
    await user.open("/")
    await see(user, marker="cloning")
    await upload(user, "notes.wav", b"these are my notes, not a recording")
    await see(user, "This does not look like a sound file the server can read; it will probably be refused.")
    user.find(marker="reference-transcript").type("Hello.")
    user.find(marker="text").type("Try it anyway.")
    user.find(marker="synthesize").click()
    await see(user, "The reference clip can't be used")
    await see(user, "It is not an audio file the server can read. Upload a WAV, FLAC, Ogg or MP3 recording.")
    await user.should_not_see("Traceback")
    await user.should_not_see(marker="result-audio")
    assert one(user, "synthesize").enabled  # the person can fix it and try again


async def test_a_clip_too_short_is_explained_and_can_be_replaced(user):
    await user.open("/")
    await see(user, marker="cloning")
    await upload(user, "blip.wav", tone_wav(0.2))
    user.find(marker="reference-transcript").type("Hi.")
    user.find(marker="text").type("Short clips do not work.")
    user.find(marker="synthesize").click()
    await see(user, "The clip is only 0.20 s long; record at least 0.5 s of speech.")
    user.find(marker="reference-remove").click()
    await user.should_not_see(marker="reference-audio")
    await see(user, marker="reference-upload")  # ready for another clip
    user.find(marker="synthesize").click()
    await see(user, marker="result-audio")
    await see(user, "tone · WAV", kind=ui.label)


async def test_the_voice_picker_lists_the_servers_voices_and_the_choice_is_used(user):
    await user.open("/")
    await see(user, marker="voice")
    voice = one(user, "voice")
    assert list(voice.options) == ["tone", "low"] and voice.value == "tone"  # ListVoices, default first
    assert voice.options["low"] == "low (en-US): lower tone"
    voice.set_value("low")
    user.find(marker="text").type("In the other voice.")
    user.find(marker="synthesize").click()
    await see(user, marker="result-audio")
    await see(user, "low · WAV", kind=ui.label)


async def test_a_clip_longer_than_the_server_takes_is_refused_at_upload(user):
    await user.open("/")
    await see(user, marker="cloning")
    await upload(user, "speech.wav", tone_wav(60))  # the server takes 30 s at most
    await see(user, "speech.wav is 60.0 s long; the server takes clips of at most 30 s.")
    await user.should_not_see(marker="reference-audio")  # nothing kept: the upload is offered again
    await see(user, marker="reference-upload")
    await upload(user, "short.wav", tone_wav(2))
    await see(user, "short.wav: 2.0 s, 16,000 Hz")
