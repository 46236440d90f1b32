"""The web UI in front of a server that requires API keys: it asks for a key once per browser
session, keeps it on its own side (never in the page), carries it on every call, refuses wrong keys
and limits failed attempts, explains a key revoked meanwhile, and signs out."""

from __future__ import annotations

import pytest
from nicegui import ui

from tests.support.engines import ToneEngine
from tests.support.security import add_key, revoke_key
from tests.support.server import ServerThread

from .helpers import one, see, wait_until


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    keys = {
        "good": add_key(path, "web user", ("synthesize",)),
        "reader": add_key(path, "reader", ("manage-voices",)),
        "doomed": add_key(path, "to be revoked", ("synthesize",)),
    }
    with ServerThread(ToneEngine(), api_keys_file=path) as server:
        yield server, path, keys


@pytest.fixture
def webui_target(keyed_server) -> str:
    return keyed_server[0].target


@pytest.fixture(autouse=True)
def fresh_failure_counts():
    """Every simulated person comes from the same address: each test starts with a clean slate."""
    from voxbatch_webui.session import KEYRING

    KEYRING._failures.clear()


def element_strings(user) -> str:
    """Everything the page holds: texts, values and props of every element."""
    found = []
    for element in user.find(ui.element).elements:
        found += [str(getattr(element, "text", "")), str(getattr(element, "value", "")), str(element.props)]
    return "\n".join(found)


async def sign_in(user, key: str) -> None:
    await see(user, marker="api-key")
    user.find(marker="api-key").type(key)
    user.find(marker="sign-in").click()


async def test_a_person_signs_in_once_synthesizes_and_signs_out(user, keyed_server):
    _, _, keys = keyed_server
    _, secret = keys["good"]
    await user.open("/")
    await see(user, "This speech server requires an API key")
    await user.should_not_see(marker="text")  # no form before signing in
    await sign_in(user, secret)
    await see(user, marker="text")
    assert secret not in element_strings(user)  # not in the page
    user.find(marker="stream").click()
    user.find(marker="text").type("Signed in and speaking.")
    user.find(marker="synthesize").click()
    await see(user, marker="result-audio")
    await user.open("/server")  # asked once: the other page needs no new sign-in
    await see(user, "tone-test")
    user.find(marker="sign-out").click()
    await see(user, marker="api-key")
    await user.open("/")
    await see(user, marker="api-key")


async def test_a_wrong_key_is_refused_and_failed_attempts_are_limited(user):
    await user.open("/")
    for attempt in range(5):
        await sign_in(user, f"vbx_wrongwrong_{'x' * 40}{attempt}")
        await wait_until(lambda: one(user, "api-key").value == "", "the key field to be emptied")
        await see(user, "The server does not accept this key")
    await sign_in(user, "vbx_wrongwrong_" + "y" * 43)
    await see(user, "Too many failed attempts")
    await user.should_not_see(marker="text")


async def test_a_key_without_the_right_or_revoked_meanwhile_is_explained(user, keyed_server):
    _, path, keys = keyed_server
    await user.open("/")
    await sign_in(user, keys["reader"][1])
    await see(user, marker="text")
    user.find(marker="stream").click()
    user.find(marker="text").type("Not allowed to speak.")
    user.find(marker="synthesize").click()
    await see(user, "Your API key may not do this")
    user.find(marker="sign-out").click()
    await sign_in(user, keys["doomed"][1])
    await see(user, marker="text")
    revoke_key(path, keys["doomed"][0])
    user.find(marker="stream").click()
    user.find(marker="text").type("Revoked by now.")
    for _ in range(3):  # the server notices the file's change within a second
        user.find(marker="synthesize").click()
        try:
            await user.should_see("Your API key is not accepted", retries=30)
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("the revoked key was never explained")
