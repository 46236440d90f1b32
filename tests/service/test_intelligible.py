"""The embedded voice speaks real English: pocketsphinx must hear the words we asked for."""

from __future__ import annotations

import re

import numpy as np
import pytest
from pocketsphinx import Decoder

from voxbatch import Client, Encoding
from voxbatch_server.audio.resample import resample

CASES = [
    "Good morning. The weather is nice today and the sun is shining.",
    "Please call me back tomorrow morning. I would like a cup of coffee.",
]


def transcribe(samples: np.ndarray, rate: int) -> str:
    pcm = (np.clip(resample(samples, rate, 16000), -1, 1) * 32767).astype("<i2").tobytes()
    decoder = Decoder(samprate=16000)
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    return decoder.hyp().hypstr if decoder.hyp() else ""


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


@pytest.mark.parametrize("text", CASES)
@pytest.mark.parametrize("streamed", [False, True], ids=["unary", "stream"])
def test_speech_is_recognised(piper_server, text, streamed):
    with Client(piper_server.target) as client:
        if streamed:
            from voxbatch import join_chunks

            audio = join_chunks(list(client.stream(text, encoding=Encoding.OGG_OPUS, temperature=0.0)))
        else:
            audio = client.synthesize(text, temperature=0.0)
    heard = words(transcribe(audio.to_numpy(), audio.sample_rate))
    expected = words(text)
    recognised = [w for w in expected if w in heard]
    assert len(recognised) >= 0.7 * len(expected), f"heard {' '.join(heard)!r}"


def test_silence_is_not_recognised_as_those_words():
    heard = words(transcribe(np.zeros(16000 * 3, dtype=np.float32), 16000))
    assert len([w for w in words(CASES[0]) if w in heard]) < 3
