"""The web UI's pure parts: settings, the words for each error, the pieces a stream plays as,
the files people download, and the `voxbatch webui` command."""

from __future__ import annotations

import io
import struct
import sys

import grpc
import numpy as np
import pytest
import soundfile as sf

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch import (
    Client,
    DeadlineExceededError,
    Encoding,
    InvalidRequestError,
    OverloadedError,
    ServerError,
    UnavailableError,
    join_chunks,
)
from voxbatch import cli as voxbatch_cli
from voxbatch_webui.audio_files import StreamDecoder, downloadable, playable, rate_choices
from voxbatch_webui.backend import explain
from voxbatch_webui.pages.form import nice_step
from voxbatch_webui.settings import SettingsError, WebUISettings

# -- settings ---------------------------------------------------------------------------------


def test_a_flag_wins_over_the_environment_which_wins_over_the_default():
    env = {"VOXBATCH_WEBUI_PORT": "9000", "VOXBATCH_WEBUI_SERVER": "tts.internal:50051"}
    assert WebUISettings.from_argv([], environ={}).port == 8080
    from_env = WebUISettings.from_argv([], environ=env)
    assert (from_env.port, from_env.server) == (9000, "tts.internal:50051")
    assert WebUISettings.from_argv(["--port", "9100"], environ=env).port == 9100


def test_bad_settings_are_refused_with_what_is_accepted():
    with pytest.raises(SettingsError, match="--port: expected int, got 'eighty'"):
        WebUISettings.from_argv(["--port", "eighty"], environ={})
    with pytest.raises(SettingsError, match=r"server must be HOST:PORT or https://HOST\[:PORT\], not 'localhost'"):
        WebUISettings.from_argv([], environ={"VOXBATCH_WEBUI_SERVER": "localhost"})


def test_the_webui_command_reports_bad_settings_and_exit_code(capsys):
    assert voxbatch_cli.main(["webui", "--refresh-s", "0"]) == 2
    assert "refresh_s must be 0.2-60, not 0.0" in capsys.readouterr().err


def test_the_sdk_command_works_without_nicegui(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "nicegui", None)  # as if the webui extra were not installed
    monkeypatch.delitem(sys.modules, "voxbatch_webui.main", raising=False)
    assert voxbatch_cli.main(["webui"]) == 2
    assert "install voxbatch[webui]" in capsys.readouterr().err


# -- what errors say -----------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "title", "detail"), [
    (UnavailableError(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses"),
     "The speech server can't be reached", "Nothing answered at tts:1. It may still be starting"),
    (InvalidRequestError(grpc.StatusCode.INVALID_ARGUMENT, "text is 5001 characters long; the limit is 5000"),
     "The text is too long", "It has 5,001 characters; the server accepts at most 5,000."),
    (InvalidRequestError(grpc.StatusCode.INVALID_ARGUMENT,
                         "reference.audio could not be decoded as audio (Error opening <_io.BytesIO at 0x1>)"),
     "The reference clip can't be used", "It is not an audio file the server can read."),
    (InvalidRequestError(grpc.StatusCode.INVALID_ARGUMENT, "reference.audio is 45.0 s long; the limit is 30 s"),
     "The reference clip can't be used", "The clip is 45.0 s long; the server accepts at most 30 s. Trim it."),
    (OverloadedError(grpc.StatusCode.RESOURCE_EXHAUSTED, "the queue is full (256 items); retry later"),
     "The server is busy", "Try again in a few seconds."),
    (DeadlineExceededError(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed"),
     "The server took too long", "did not finish in time"),
    (ServerError(grpc.StatusCode.INTERNAL, "engine crashed"), "The speech engine failed", "Try again"),
])
def test_each_error_has_words_a_person_understands(error, title, detail):
    problem = explain(error, "tts:1")
    assert problem.title == title and detail in problem.detail
    assert "Error opening" not in problem.detail and "0x" not in problem.detail


def test_an_unexpected_error_is_logged_for_engineers_but_not_shown(caplog):
    problem = explain(KeyError("secret internals"), "tts:1")
    assert problem.title == "Something went wrong in the web UI" and "secret" not in problem.detail
    assert "secret internals" in caplog.text


# -- stream pieces and files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tone_server():
    # One sentence per work item, so that a short text streams in several pieces.
    with ServerThread(ToneEngine(), cache_mb=0, work_item_chars=20, max_text_chars=2000) as server:
        yield server


@pytest.mark.parametrize("encoding", [Encoding.WAV, Encoding.PCM_S16LE, Encoding.OGG_OPUS, Encoding.MP3])
def test_a_stream_plays_as_pieces_that_add_up_to_the_whole(tone_server, encoding):
    text = "One sentence here. Then another one. And a third to finish."
    with Client(tone_server.target) as client:
        chunks = list(client.stream(text, encoding=encoding))
    decoder = StreamDecoder(encoding, chunks[0].sample_rate)
    pieces = [decoder.feed(chunk.data) for chunk in chunks]
    played = [sf.read(io.BytesIO(p), dtype="float32")[0] for p in pieces if p]
    assert pieces[0] or encoding is Encoding.OGG_OPUS  # Opus's first page may hold only its headers
    assert len(played) >= 2  # sound arrives before the stream ends
    whole = join_chunks(chunks)
    expected = whole.to_numpy()
    total = np.concatenate(played)
    assert abs(len(total) - len(expected)) <= 0.01 * len(expected)
    n = min(len(total), len(expected))
    assert np.sqrt(np.mean((total[:n] - expected[:n]) ** 2)) < 0.05


def test_a_streamed_wav_downloads_with_its_true_length(tone_server):
    with Client(tone_server.target) as client:
        data = join_chunks(list(client.stream("Streamed. As a wave file.", encoding=Encoding.WAV))).data
    assert struct.unpack("<I", data[40:44])[0] == 0xFFFFFFFF  # the stream does not know its length
    fixed = downloadable(data, Encoding.WAV)
    assert struct.unpack("<I", fixed[40:44])[0] == len(data) - 44
    assert struct.unpack("<I", fixed[4:8])[0] == len(data) - 8
    assert sf.info(io.BytesIO(fixed)).frames == (len(data) - 44) // 2
    assert playable(fixed, Encoding.WAV, 16000) == (fixed, "audio/wav")


def test_sample_rate_choices_follow_the_format():
    assert list(rate_choices(Encoding.OGG_OPUS, 22050, 8000, 192000)) == [0, 8000, 12000, 16000, 24000, 48000]
    assert rate_choices(Encoding.OGG_OPUS, 22050, 8000, 192000)[0] == "Native (sent as 48,000 Hz)"
    assert list(rate_choices(Encoding.MP3, 22050, 16000, 44100)) == [0, 16000, 22050, 24000, 44100]


@pytest.mark.parametrize(("low", "high", "integer", "step"), [
    (0.25, 4.0, False, 0.05), (0.0, 2.0, False, 0.02), (1, 50, True, 1), (0, 10000, True, 100),
])
def test_slider_steps_are_round_numbers(low, high, integer, step):
    assert nice_step(low, high, integer) == pytest.approx(step)
