"""The web UI in a real browser: Debian's headless Chromium, driven by selenium, on the UI started
as `voxbatch webui` in its own process, in front of real servers on loopback ports.

Screenshots of the main states, at desktop and phone widths, go to test-output/webui/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.server import ServerThread

from .helpers import SCREENSHOTS, HoldSecondSentence, free_port, tone_wav

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Without these Chromium tries to reach the network, which is closed here.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
DESKTOP, PHONE = (1280, 900), (390, 844)
WAIT_S = 60  # upper bound for anything to appear; a slow machine waits, a broken page fails

SYNTHESIZE = "//button[.//span[normalize-space()='Synthesize']]"
RESULT_AUDIO = "//div[contains(@class,'q-card')][.//div[normalize-space()='Ready']]//audio"

# Fetches the <audio> element's source and decodes it with the browser's own decoder.
DECODE_JS = """
const [xpath, done] = arguments;
const audio = document.evaluate(xpath, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
fetch(audio.src).then(r => r.arrayBuffer())
  .then(data => new OfflineAudioContext(1, 1, 44100).decodeAudioData(data))
  .then(buffer => {
    const samples = buffer.getChannelData(0);
    let sum = 0;
    for (const s of samples) sum += s * s;
    done({seconds: buffer.duration, rms: Math.sqrt(sum / Math.max(1, samples.length))});
  })
  .catch(error => done({error: String(error)}));
"""


def chromium(profile: Path, extra_flags: tuple[str, ...] = (), prefs: dict | None = None):
    """Debian's headless Chromium through its WebDriver (skips, or fails on CI, when missing)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing; scripts/setup.d/20-browser.sh installs them")
        pytest.skip("chromium and chromium-driver are not installed (scripts/setup.d/20-browser.sh installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, *extra_flags):
        options.add_argument(flag)
    if prefs:
        options.add_experimental_option("prefs", prefs)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={DESKTOP[0]},{DESKTOP[1]}")
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_script_timeout(WAIT_S)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


class WebUIProcess:
    """`voxbatch webui` in its own process, as a person starts it."""

    def __init__(self, server: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_", "VOXBATCH_"))}
        self.storage = tempfile.mkdtemp(prefix="webui-storage-")
        env["NICEGUI_STORAGE_PATH"] = self.storage
        self.log = log
        self._log_file = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "voxbatch.cli", "webui", "--server", server, "--host", "127.0.0.1",
             "--port", str(self.port), "--refresh-s", "0.5"],
            env=env, stdout=self._log_file, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + WAIT_S
        while True:
            assert self.process.poll() is None, f"the web UI exited: {log.read_text()}"
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"the web UI did not start: {log.read_text()}"
            time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self._log_file.close()
        shutil.rmtree(self.storage, ignore_errors=True)


def wait_for(driver, condition, what: str):
    """Wait until `condition(driver)` is truthy; on failure keep a screenshot and say what the page showed."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(lambda d: condition(d))
    except TimeoutException:
        name = "failed-" + "".join(c if c.isalnum() else "-" for c in what)[:60]
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        page = driver.execute_script("return document.body.innerText")
        logs = driver.get_log("browser")
        raise AssertionError(f"never happened: {what}\npage text:\n{page}\nbrowser log: {logs}") from None


def shot(driver, name: str, size: tuple[int, int]) -> None:
    """A screenshot of the whole page at this width."""
    height = size[1]
    for _ in range(3):  # grow the window to the page's full height (it changes as the layout settles)
        driver.set_window_size(size[0], height)
        time.sleep(0.3)  # let the layout settle before measuring and taking the picture (not an assertion)
        page, viewport = driver.execute_script(
            "return [Math.max(document.documentElement.scrollHeight, document.body.scrollHeight), window.innerHeight]")
        if page <= viewport:
            break
        height = min(height + page - viewport + 8, 4000)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    driver.set_window_size(*size)


def type_and_synthesize(driver, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "textarea"), "the text box")[0]
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)
    box.send_keys(text)
    button = driver.find_element(By.XPATH, SYNTHESIZE)
    wait_for(driver, lambda d: button.is_enabled() and "disabled" not in (button.get_attribute("class") or ""),
             "an enabled Synthesize button")
    button.click()


def audio_source(driver) -> str:
    from selenium.webdriver.common.by import By

    def src(d):
        players = d.find_elements(By.XPATH, RESULT_AUDIO)
        return players and players[0].get_attribute("src")

    return wait_for(driver, src, "the result's audio player gets its source")


def decoded(driver) -> dict:
    result = driver.execute_async_script(DECODE_JS, RESULT_AUDIO)
    assert "error" not in result, result
    return result


@pytest.fixture(scope="module")
def piper_ui(piper_server, tmp_path_factory):
    ui = WebUIProcess(piper_server.target, tmp_path_factory.mktemp("webui") / "piper-ui.log")
    yield ui
    ui.stop()


def test_a_person_types_synthesizes_and_hears_speech(browser, piper_ui):
    from selenium.webdriver.common.by import By

    browser.set_window_size(*DESKTOP)
    browser.get(piper_ui.url + "/")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "textarea"), "the form")
    shot(browser, "01-desktop-start", DESKTOP)
    type_and_synthesize(browser, "Good morning. The web page speaks through the voxbatch server.")
    src = audio_source(browser)
    assert src.startswith(piper_ui.url + "/audio/")
    sound = decoded(browser)
    assert sound["seconds"] > 1.5 and sound["rms"] > 0.01, sound  # real, non-silent sound
    wait_for(browser, lambda d: d.execute_script(
        "const a = document.evaluate(arguments[0], document, null, 9, null).singleNodeValue;"
        "return a.readyState >= 1 && a.duration > 1.5", RESULT_AUDIO), "the player loads the audio")
    shot(browser, "02-desktop-result", DESKTOP)
    shot(browser, "03-phone-result", PHONE)
    browser.get(piper_ui.url + "/server")
    wait_for(browser, lambda d: "en_US-joe-medium" in d.find_element(By.TAG_NAME, "body").text, "the server page")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "canvas"), "the charts")
    shot(browser, "04-desktop-server", DESKTOP)
    shot(browser, "05-phone-server", PHONE)


def test_a_cloned_voice_streams_from_the_first_sentence_and_a_dead_server_is_explained(browser, tmp_path):
    from selenium.webdriver.common.by import By

    release = threading.Event()
    server = ServerThread(HoldSecondSentence(release, WAIT_S, cloning=True), max_batch_size=1, cache_mb=0).__enter__()
    ui = WebUIProcess(server.target, tmp_path / "stream-ui.log")
    try:
        browser.set_window_size(*PHONE)
        browser.get(ui.url + "/")
        body = lambda d: d.find_element(By.TAG_NAME, "body").text  # noqa: E731

        # Voice cloning: upload a clip through the page's uploader, listen to it, type its words.
        clip = tmp_path / "my-voice.wav"
        clip.write_bytes(tone_wav(1.5))
        wait_for(browser, lambda d: d.find_elements(By.XPATH, "//*[normalize-space()='Clone a voice from a recording']"),
                 "the cloning section")[0].click()
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=file]"), "the uploader")[0] \
            .send_keys(str(clip))
        wait_for(browser, lambda d: "my-voice.wav: 1.5 s, 16,000 Hz" in body(d), "the clip is taken")
        preview = wait_for(browser, lambda d: d.find_elements(By.XPATH, "//audio[contains(@src, '/audio/')]"),
                           "the clip's player")[0]
        wait_for(browser, lambda d: d.execute_script("return arguments[0].readyState >= 1", preview),
                 "the browser can play the clip")
        transcript = browser.find_element(By.XPATH, "//textarea[@aria-label='What the clip says, word for word']")
        transcript.send_keys("A steady hum.")
        shot(browser, "06-phone-cloning", PHONE)

        # Streaming: the first sentence plays while the engine still holds the second.
        type_and_synthesize(browser, "The first sentence is ready at once. The second sentence waits for the test.")
        wait_for(browser, lambda d: "Sentence 1 of 2 ready" in body(d), "progress by sentence")
        wait_for(browser, lambda d: d.execute_script("return voxbatchLive.playing()"), "the first sentence plays")
        assert not browser.find_elements(By.XPATH, RESULT_AUDIO)  # playing before the whole file exists
        shot(browser, "07-phone-streaming", PHONE)
        release.set()
        audio_source(browser)
        sound = decoded(browser)
        assert sound["seconds"] > 3 and sound["rms"] > 0.01, sound  # the whole file: both sentences
        assert browser.execute_script("return voxbatchLive.state.started") >= 2
        assert browser.execute_script("return voxbatchLive.state.error") == ""
        assert "tone (cloned)" in body(browser)

        server.stop()  # the server goes away while the page is open
        type_and_synthesize(browser, "Is the server still there?")
        alert = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "[role=alert]"), "an error message")[0]
        wait_for(browser, lambda d: "can't be reached" in alert.text, "the error says the server can't be reached")
        assert "Try again in a moment" in alert.text
        assert "Traceback" not in body(browser)
        shot(browser, "08-phone-server-down", PHONE)
        shot(browser, "09-desktop-server-down", DESKTOP)
    finally:
        release.set()
        ui.stop()
        server.stop()


def test_a_person_signs_in_with_a_key_that_never_reaches_the_page(browser, tmp_path):
    """A server that requires keys: Chromium shows the sign-in form, the key works for synthesis,
    and it appears nowhere the browser keeps (page, URL, cookies, storage); signing out asks again."""
    from selenium.webdriver.common.by import By

    from tests.support.engines import ToneEngine
    from tests.support.security import add_key

    keys = tmp_path / "keys.json"
    _, secret = add_key(keys, "browser user", ("synthesize",))
    with ServerThread(ToneEngine(), api_keys_file=keys) as server:
        ui = WebUIProcess(server.target, tmp_path / "keyed-ui.log")
        try:
            browser.set_window_size(*DESKTOP)
            browser.delete_all_cookies()
            browser.get(ui.url + "/")
            field = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=password]"), "the key field")[0]
            shot(browser, "06-desktop-sign-in", DESKTOP)
            field.send_keys(secret)
            browser.find_element(By.XPATH, "//button[.//span[normalize-space()='Sign in']]").click()
            type_and_synthesize(browser, "Signed in through a real browser.")
            audio_source(browser)
            assert decoded(browser)["seconds"] > 0.5
            kept = [browser.page_source, browser.current_url, str(browser.get_cookies()),
                    str(browser.execute_script("return [JSON.stringify(localStorage), JSON.stringify(sessionStorage)]"))]
            assert not any(secret in place for place in kept)
            assert secret not in ui.log.read_text()
            browser.find_element(By.XPATH, "//button[.//span[normalize-space()='Sign out']]").click()
            wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=password]"), "the key field again")
        finally:
            ui.stop()
