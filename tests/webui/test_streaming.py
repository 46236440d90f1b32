"""Streaming as a person sees it: progress by sentence while the rest is being made, a Stop
button that ends it, and the whole file at the end. The engine holds the second sentence until
the test lets it go, so 'while the rest is being made' is a state, not a race."""

from __future__ import annotations

import threading

import pytest
from nicegui import ui

from tests.support.server import ServerThread

from .helpers import HoldSecondSentence, not_see, one, rms_of, see


@pytest.fixture
def release():
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def held_server(release):
    with ServerThread(HoldSecondSentence(release), max_batch_size=1, cache_mb=0) as server:
        yield server


@pytest.fixture
def webui_target(held_server) -> str:
    return held_server.target


async def test_progress_goes_sentence_by_sentence_and_the_whole_file_comes_at_the_end(user, release):
    await user.open("/")
    await see(user, marker="text")
    user.find(marker="text").type("The first sentence comes at once. The second sentence is held back.")
    user.find(marker="synthesize").click()
    await see(user, "Sentence 1 of 2 ready, playing while the rest is made")
    assert 0.4 < one(user, "progress").value < 0.6
    assert not one(user, "synthesize").enabled  # busy: a second click can't start another
    await user.should_not_see(marker="result-audio")
    release.set()
    await see(user, marker="result-audio")
    await see(user, "tone · WAV · 3.3 s · streamed", kind=ui.label)
    user.find(marker="result-download").click()
    seconds, rms = rms_of((await user.download.next(timeout=10)).content)
    assert seconds > 3 and rms > 0.1  # both sentences, in one file with a correct header


async def test_stop_ends_a_stream_and_the_page_is_ready_again(user, release):
    await user.open("/")
    await see(user, marker="text")
    user.find(marker="text").type("This first part plays. The second part never comes.")
    user.find(marker="synthesize").click()
    await see(user, "Sentence 1 of 2 ready, playing while the rest is made")
    user.find(marker="stop").click()
    await user.should_see("Stopped.")
    await not_see(user, marker="progress-label")
    assert one(user, "synthesize").enabled
    await user.should_not_see(marker="result-audio")
    await user.should_not_see(marker="history-entry")
