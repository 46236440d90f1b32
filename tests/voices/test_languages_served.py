"""Languages and normalisation as a client meets them: the embedded voice refuses Chinese text
with a clear message instead of spelling characters out, mixed text passes, a voice that can read
the text is suggested, and `normalize` decides what text the engine reads."""

from __future__ import annotations

import pytest

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch import Client, Reference
from voxbatch.errors import InvalidRequestError

from .helpers import clip

CHINESE = "你好，欢迎使用语音合成系统。"


def test_the_embedded_voice_refuses_chinese_text_and_reads_mixed_text(piper_server):
    with Client(piper_server.target) as client:
        with pytest.raises(InvalidRequestError) as refused:
            client.synthesize(CHINESE)
        assert refused.value.details == (
            "the text is mostly in Han script (Chinese characters), which voice 'joe' cannot read: "
            "it speaks en; no voice on this server reads it"
        )
        with pytest.raises(InvalidRequestError, match="mostly in Han script"):
            list(client.stream(CHINESE))
        assert client.synthesize("Meet 王小明 at the station at 3:30 😀.").duration_seconds > 1


@pytest.fixture(scope="module")
def tone(tmp_path_factory):
    engine = ToneEngine(cloning=True)
    with ServerThread(engine, voices_dir=tmp_path_factory.mktemp("lang-voices"), cache_mb=0) as server:
        server.tone_engine = engine
        yield server


def test_a_voice_that_reads_the_text_is_suggested(tone, monkeypatch):
    # The tone engine says it speaks English; let it speak Chinese too, so a saved voice may.
    monkeypatch.setattr("voxbatch_server.voices.library.VoiceLibrary.engine_languages", lambda self: ("en", "zh"))
    with Client(tone.target) as client:
        client.create_voice("mandarin-mei", Reference(clip(), "一段测试音频。"), languages=["zh"])
        try:
            with pytest.raises(InvalidRequestError, match="cannot read: it speaks en; voices that can: mandarin-mei"):
                client.synthesize(CHINESE)
            assert client.synthesize(CHINESE, voice="mandarin-mei").duration_seconds > 0
            with pytest.raises(InvalidRequestError, match="mostly in Latin script .* voice 'mandarin-mei'"):
                client.synthesize("Only English words here.", voice="mandarin-mei")
        finally:
            client.delete_voice("mandarin-mei")


def test_normalize_spells_out_what_the_engine_reads(tone):
    engine = tone.tone_engine
    with Client(tone.target) as client:
        assert client.server_info().normalize_default is False  # the tone engine's default, as Piper's
        client.synthesize("It costs $5, 30% off at 10:30 AM.", normalize=True)
        client.synthesize("It costs $5 today.")
    seen = [text for batch in engine.batches for text in batch]
    assert "It costs five dollars, thirty percent off at ten thirty AM." in seen
    assert "It costs $5 today." in seen
