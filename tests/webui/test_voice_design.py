"""Voice design in the UI, against ToneEngine(voice_design=True) (an engine that follows
instructions and clones from a clip alone, as VoxCPM2 does): the "Describe the voice" box, and
cloning without typing the clip's words. Engines without them show neither."""

from __future__ import annotations

import pytest
from nicegui import ui

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread

from .helpers import one, see, tone_wav

ENGINE = ToneEngine(voice_design=True)


@pytest.fixture(scope="module")
def design_server():
    with ServerThread(ENGINE, cache_mb=0) as server:
        yield server


@pytest.fixture
def webui_target(design_server) -> str:
    return design_server.target


async def test_a_described_voice_and_a_clip_without_its_words_reach_the_engine(user):
    await user.open("/")
    await see(user, "Describe the voice (optional)")
    await see(user, marker="cloning")
    await one(user, "reference-upload").handle_uploads([ui.upload.SmallFileUpload("me.wav", "audio/wav", tone_wav(1.5))])
    await see(user, "me.wav: 1.5 s, 16,000 Hz")
    user.find(marker="instructions").type("A warm, slow, elderly voice")
    user.find(marker="text").type("Speak like the clip.")
    ENGINE.tasks.clear()
    user.find(marker="synthesize").click()
    await see(user, marker="result-audio")  # no "needs its words" problem: the transcript is optional here
    await user.should_not_see(marker="problem")
    task = ENGINE.tasks[-1]
    assert task.instructions == "A warm, slow, elderly voice"
    assert task.reference is not None and task.reference.transcript == ""
