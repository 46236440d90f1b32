"""A saved voice on the VoxCPM engine (tiny random model): the prompt is encoded once, when the
voice is saved; a request by name encodes nothing and sounds exactly like sending the clip."""

from __future__ import annotations

import pytest

from tests.support.server import ServerThread
from voxbatch import Client, Encoding, InvalidRequestError, Reference

from .test_server_voxcpm import wav_bytes
from .conftest import prompt_audio


@pytest.fixture
def server(tiny_engine, tmp_path):
    with ServerThread(tiny_engine, cache_mb=0, voices_dir=tmp_path) as server:
        yield server


def test_a_request_by_voice_name_encodes_nothing_and_matches_the_clip(server, tiny_engine):
    reference = Reference(wav_bytes(prompt_audio()[::2], 22050), "A tone sweeps.")
    options = dict(seed=4, inference_steps=2, encoding=Encoding.PCM_S16LE)
    with Client(server.target) as client:
        voice = client.create_voice("tone-sweep", reference)
        assert list(voice.languages) == ["zh", "en"]
        tiny_engine._prompts.clear()  # so that the by-name request cannot lean on the encoder's cache
        by_name = client.synthesize("Hi there.", voice="tone-sweep", **options)
        by_clip = client.synthesize("Hi there.", reference=reference, **options)
    assert not by_name.timings.prompt_encoded and by_name.timings.prompt_encode_seconds == 0
    assert by_clip.timings.prompt_encoded and by_clip.timings.prompt_encode_seconds > 0
    assert by_name.data == by_clip.data


def test_a_voxcpm2_voice_saved_from_a_clip_alone_clones_in_isolation_by_name(tiny_v2_engine, tmp_path):
    clip = Reference(wav_bytes(prompt_audio()[::2], 22050), "")  # no transcript: isolated cloning (VoxCPM2)
    options = dict(seed=6, inference_steps=2, encoding=Encoding.PCM_S16LE)
    with ServerThread(tiny_v2_engine, cache_mb=0, voices_dir=tmp_path) as server, Client(server.target) as client:
        voice = client.create_voice("from-sound-alone", clip)
        assert voice.transcript == "" and len(voice.languages) == 30 and {"ja", "km", "sw"} <= set(voice.languages)
        with pytest.raises(InvalidRequestError, match="Georgian"):  # not one of VoxCPM2's 30 languages
            client.synthesize("გამარჯობა, როგორ ხარ დღეს?", voice="from-sound-alone", **options)
        assert client.synthesize("こんにちは、元気ですか。", voice="from-sound-alone", **options).duration_seconds > 0
        tiny_v2_engine._prompts.clear()
        by_name = client.synthesize("Hi there.", voice="from-sound-alone", **options)
        by_clip = client.synthesize("Hi there.", reference=clip, **options)
    assert not by_name.timings.prompt_encoded and by_clip.timings.prompt_encoded
    assert by_name.data == by_clip.data
