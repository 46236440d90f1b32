"""What a person sees when things go wrong: a server that is not there yet, one that goes away,
and an engine that fails. Always words that say what to do, never a stack trace or a hang."""

from __future__ import annotations

import dataclasses

import pytest

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread

from .helpers import free_port, not_see, one, see


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def webui_target(port) -> str:
    return f"127.0.0.1:{port}"


def server_on(port: int, engine: ToneEngine) -> ServerThread:
    server = ServerThread(engine)
    server.settings = dataclasses.replace(server.settings, port=port)
    return server


async def test_a_server_still_starting_is_explained_and_the_page_comes_up_with_it(user, port):
    await user.open("/")
    await see(user, "The speech server can't be reached")
    await see(user, f"Nothing answered at 127.0.0.1:{port}. It may still be starting, or it has stopped. Try again in a moment.")
    await user.should_not_see(marker="text")
    with server_on(port, ToneEngine()):
        await see(user, marker="text")  # the page keeps trying and builds the form when the server answers
        await not_see(user, marker="problem")


async def test_the_server_page_waits_for_the_server_too(user, port):
    await user.open("/server")
    await see(user, "The speech server can't be reached")
    with server_on(port, ToneEngine()):
        await see(user, "tone-test")
        await not_see(user, marker="problem")


async def test_a_server_that_goes_away_is_explained_when_synthesizing(user, port):
    server = server_on(port, ToneEngine()).__enter__()
    try:
        await user.open("/")
        await see(user, marker="text")
        user.find(marker="text").type("Is anybody there?")
        server.stop()
        user.find(marker="synthesize").click()
        await see(user, "The speech server can't be reached")
        await user.should_not_see("Traceback")
        await see(user, marker="synthesize")
        assert one(user, "synthesize").enabled  # not stuck: the person can try again
    finally:
        server.stop()


async def test_an_engine_failure_is_explained(user, port):
    with server_on(port, ToneEngine(fail_on="boom")):
        await user.open("/")
        await see(user, marker="text")
        user.find(marker="stream").click()
        user.find(marker="text").type("This sentence goes boom.")
        user.find(marker="synthesize").click()
        await see(user, "The speech engine failed")
        await see(user, "Something went wrong on the server while speaking this text. Try again, or change the text.")
        await user.should_not_see("Traceback")
