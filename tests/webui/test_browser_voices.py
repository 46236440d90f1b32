"""The Voices page and the language switch in Debian's headless Chromium (a fake microphone
gives the recording), against the web UI process in front of a server whose engine clones.
Screenshots in English and Chinese, at desktop and phone widths, go to test-output/webui/."""

from __future__ import annotations

import pytest

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch import Client

from .test_browser import DESKTOP, PHONE, WebUIProcess, chromium, shot, wait_for


@pytest.fixture(scope="module")
def chinese_browser(tmp_path_factory):
    """Chromium whose person reads Chinese (Accept-Language zh-CN) and has a (fake) microphone."""
    driver = chromium(
        tmp_path_factory.mktemp("chromium-zh-profile"),
        ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
         "--autoplay-policy=no-user-gesture-required", "--lang=zh-CN"),
        prefs={"intl.accept_languages": "zh-CN,zh"},
    )
    yield driver
    driver.quit()


def test_chinese_by_default_then_english_and_a_voice_recorded_from_the_microphone(chinese_browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser = chinese_browser
    body = lambda d: d.find_element(By.TAG_NAME, "body").text  # noqa: E731
    with ServerThread(ToneEngine(cloning=True), voices_dir=tmp_path / "voices") as server:
        ui = WebUIProcess(server.target, tmp_path / "voices-ui.log")
        try:
            browser.set_window_size(*DESKTOP)
            browser.get(ui.url + "/voices")
            wait_for(browser, lambda d: "保存声音" in body(d) and "内置声音 (2)" in body(d), "the page in Chinese")
            assert browser.execute_script("return document.documentElement.lang") == "zh-CN"
            shot(browser, "20-desktop-voices-zh", DESKTOP)
            shot(browser, "21-phone-voices-zh", PHONE)

            # The Speak page in Chinese: Chinese text for an English voice is refused in Chinese words.
            browser.get(ui.url + "/")
            box = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "textarea"), "the Speak page")[0]
            assert "合成" in body(browser) and "历史记录" in body(browser)
            box.send_keys("你好，欢迎使用语音合成系统。")
            browser.find_element(By.XPATH, "//button[.//span[normalize-space()='合成']]").click()
            alert = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "[role=alert]"), "the refusal")[0]
            wait_for(browser, lambda d: "这个声音无法朗读这段文本" in alert.text, "the refusal in Chinese")
            assert "汉字" in alert.text and "英语" in alert.text and "tone" in alert.text
            shot(browser, "24-desktop-speak-zh", DESKTOP)
            shot(browser, "25-phone-speak-zh", PHONE)
            browser.get(ui.url + "/server")
            wait_for(browser, lambda d: "批处理" in body(d) and "tone-test" in body(d), "the Server page in Chinese")
            wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "canvas"), "the charts")
            shot(browser, "26-desktop-server-zh", DESKTOP)
            shot(browser, "27-phone-server-zh", PHONE)
            browser.get(ui.url + "/voices")
            wait_for(browser, lambda d: "保存声音" in body(d), "back on the Voices page")

            browser.find_element(By.XPATH, "//button[.//span[normalize-space()='English']]").click()  # the switch
            wait_for(browser, lambda d: "Save a voice" in body(d), "the page in English after the switch")
            browser.get(ui.url + "/voices")  # the choice outlives the browser's language
            wait_for(browser, lambda d: "Save a voice" in body(d), "English kept")

            record = wait_for(browser, lambda d: d.find_elements(By.XPATH, "//button[.//span[normalize-space()="
                                                                           "'Record from the microphone']]"), "Record")[0]
            record.click()
            wait_for(browser, lambda d: "Recording… 2 s" in body(d), "two seconds of recording")
            browser.find_element(By.XPATH, "//button[.//span[normalize-space()='Stop recording']]").click()
            wait_for(browser, lambda d: "recording.wav: " in body(d) and "16,000 Hz" in body(d), "the recording is taken")
            browser.find_element(By.XPATH, "//input[@aria-label='Name']").send_keys("mic-voice")
            browser.find_element(By.XPATH, "//textarea[@aria-label='What the clip says, word for word']") \
                .send_keys("A beep from the fake microphone.")
            browser.find_element(By.XPATH, "//button[.//span[normalize-space()='Save voice']]").click()
            wait_for(browser, lambda d: "Saved voices (1)" in body(d), "the voice is saved")
            with Client(server.target) as client:
                saved = client.get_voice("mic-voice", include_audio=True)
            assert saved.voice.reference_seconds >= 1.5 and saved.reference_audio[:4] == b"RIFF"
            listen = browser.find_element(By.XPATH, "//button[.//i[normalize-space()='play_arrow']]")
            browser.execute_script("arguments[0].click()", listen)  # the 'saved' notification may cover it
            player = wait_for(browser, lambda d: d.find_elements(By.XPATH, "//audio[contains(@src, '/audio/')]"),
                              "the saved clip's player")[-1]
            wait_for(browser, lambda d: d.execute_script("return arguments[0].readyState >= 1 && arguments[0].duration >= 1.5",
                                                         player), "the browser plays the saved clip")
            shot(browser, "22-desktop-voices-en", DESKTOP)
            shot(browser, "23-phone-voices-en", PHONE)
        finally:
            ui.stop()
