"""The Voices page against a real server whose engine clones (the tone engine): save a voice from
an uploaded clip, see it grouped with its language badges, listen to it, be told when a name is
taken, delete it; and the same page in Chinese after the language switch."""

from __future__ import annotations

import pytest
from nicegui import ui

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch import Client

from .helpers import one, see, texts, tone_wav


@pytest.fixture(scope="module")
def cloning_server(tmp_path_factory):
    engine = ToneEngine(cloning=True)
    with ServerThread(engine, voices_dir=tmp_path_factory.mktemp("ui-voices"), cache_mb=0) as server:
        server.tone_engine = engine
        yield server


@pytest.fixture
def webui_target(cloning_server) -> str:
    return cloning_server.target


async def save_voice(user, name: str, clip: bytes, transcript: str = "A steady hum.") -> None:
    await one(user, "reference-upload").handle_uploads([ui.upload.SmallFileUpload("hum.wav", "audio/wav", clip)])
    user.find(marker="voice-name").type(name)
    user.find(marker="reference-transcript").type(transcript)
    user.find(marker="save-voice").click()


async def test_a_voice_is_saved_listed_heard_and_deleted(user, cloning_server):
    await user.open("/voices")
    await see(user, "Save a voice")
    await see(user, "No saved voices yet.")
    await see(user, "Built-in voices (2)")
    await save_voice(user, "anna", tone_wav(1.5))
    await see(user, "Saved voices (1)")
    await see(user, marker="voice-anna")
    assert "English" in texts(user, "language-badge")
    with Client(cloning_server.target) as client:  # really saved on the server, with its words
        assert client.get_voice("anna").voice.transcript == "A steady hum."

    user.find(marker="listen-anna").click()
    await see(user, marker="clip-anna")
    clip = await user.http_client.get(one(user, "clip-anna").props["src"])
    assert clip.status_code == 200 and clip.content == tone_wav(1.5)

    await save_voice(user, "anna", tone_wav(1.0))
    await see(user, "That name is taken")

    user.find(marker="delete-anna").click()
    user.find(marker="confirm-delete").click()
    await see(user, "No saved voices yet.")
    with Client(cloning_server.target) as client:
        assert [v.name for v in client.voices().voices] == ["tone", "low"]


async def test_a_bad_name_or_a_missing_clip_is_explained_before_asking_the_server(user):
    await user.open("/voices")
    await see(user, "Save a voice")
    user.find(marker="save-voice").click()
    await see(user, "The voice needs a name")
    user.find(marker="voice-name").type("anna")
    user.find(marker="save-voice").click()
    await see(user, "The voice needs a recording")


async def test_the_language_switch_shows_the_page_in_chinese(user):
    await user.open("/voices")
    await see(user, "Save a voice")
    user.find(marker="language-switch").click()
    await see(user, "保存声音")
    await see(user, "内置声音 (2)")
    await user.open("/voices")  # the choice is kept
    await see(user, "保存声音")
    user.find(marker="language-switch").click()
    await see(user, "Save a voice")


async def test_the_normalize_switch_decides_whether_numbers_are_spelt_out(user, cloning_server):
    await user.open("/")
    await see(user, marker="normalize")
    assert one(user, "normalize").value is False  # the engine's default (normalize_default), as Piper's
    user.find(marker="text").type("It costs $5 at 10:30 AM.")
    one(user, "normalize").set_value(True)
    user.find(marker="synthesize").click()
    await see(user, marker="result-audio")
    spoken = [text for batch in cloning_server.tone_engine.batches for text in batch]
    assert "It costs five dollars at ten thirty AM." in spoken
