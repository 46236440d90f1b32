"""Saved voices through the gRPC API on a server whose engine clones (the tone engine) and on
Piper (which cannot): create, list, get, delete, every refusal with its status, a restart, and
deletion while work with the voice is queued."""

from __future__ import annotations

import concurrent.futures
import threading

import grpc
import pytest

from tests.support.engines import ToneEngine
from tests.support.net import wait_until
from tests.support.server import ServerThread
from voxbatch import Client, Reference
from voxbatch.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
)
from voxbatch.tts.v1 import tts_pb2 as pb

from .helpers import clip

ANNA = Reference(clip(), "A tone sweeps up and down.")


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("voices")


@pytest.fixture(scope="module")
def server(voices_dir):
    with ServerThread(ToneEngine(cloning=True), voices_dir=voices_dir, max_saved_voices=3, max_voice_clip_mb=1) as server:
        yield server


def test_a_saved_voice_is_listed_fetched_used_and_deleted(server):
    with Client(server.target) as client:
        created = client.create_voice("narrator-anna", ANNA, description="Calm narrator", languages=["en"])
        assert (created.name, list(created.languages), created.kind) == ("narrator-anna", ["en"], pb.VOICE_KIND_SAVED)
        assert created.reference_seconds == pytest.approx(1.5) and created.create_time_unix_seconds > 0

        listed = client.voices()
        assert [v.name for v in listed.voices] == ["tone", "low", "narrator-anna"]
        assert [v.kind for v in listed.voices] == [pb.VOICE_KIND_BUILT_IN] * 2 + [pb.VOICE_KIND_SAVED]
        assert list(listed.voices[0].languages) == ["en"]

        fetched = client.get_voice("narrator-anna", include_audio=True)
        assert fetched.voice.transcript == "A tone sweeps up and down." and fetched.reference_audio == ANNA.audio
        assert client.get_voice("narrator-anna").reference_audio == b""

        audio = client.synthesize("Read by the saved voice.", voice="narrator-anna")
        assert audio.duration_seconds > 0 and not audio.timings.prompt_encoded

        client.delete_voice("narrator-anna")
        assert [v.name for v in client.voices().voices] == ["tone", "low"]
        with pytest.raises(InvalidRequestError, match="unknown voice 'narrator-anna'"):
            client.synthesize("Gone now.", voice="narrator-anna")


def test_every_refusal_has_its_status(server):
    with Client(server.target) as client:
        for bad in ("Anna", "anna smith", "-anna", "a" * 65, "", "名字"):
            with pytest.raises(InvalidRequestError, match="voice name"):
                client.create_voice(bad, ANNA)
        client.create_voice("twice", ANNA)
        with pytest.raises(AlreadyExistsError, match="exists already"):
            client.create_voice("twice", ANNA)
        with pytest.raises(AlreadyExistsError, match="built-in"):
            client.create_voice("tone", ANNA)
        with pytest.raises(NotFoundError):
            client.get_voice("nobody")
        with pytest.raises(NotFoundError):
            client.delete_voice("nobody")
        with pytest.raises(FailedPreconditionError, match="built-in"):
            client.delete_voice("tone")
        with pytest.raises(InvalidRequestError, match="could not be decoded"):
            client.create_voice("noise", Reference(b"not audio at all" * 10, "words"))
        with pytest.raises(InvalidRequestError, match="does not speak 'fr'"):
            client.create_voice("french", ANNA, languages=["fr"])
        with pytest.raises(OverloadedError, match="at most 1 MiB"):  # the clip-size limit
            client.create_voice("big", Reference(clip(seconds=29.0, rate=24000), "words"))
        client.create_voice("second", ANNA)
        client.create_voice("third", ANNA)
        with pytest.raises(OverloadedError, match="3 saved voices, its limit"):  # the count limit
            client.create_voice("fourth", ANNA)
        with pytest.raises(InvalidRequestError, match="either its name or reference audio"):
            client.synthesize("Both at once.", voice="second", reference=ANNA)
        for name in ("twice", "second", "third"):
            client.delete_voice(name)
        assert client.health() == "SERVING"


def test_saved_voices_survive_a_restart(voices_dir):
    engine = ToneEngine(cloning=True)
    with ServerThread(engine, voices_dir=voices_dir) as first, Client(first.target) as client:
        client.create_voice("keeper", ANNA, description="kept across restarts")
    with ServerThread(engine, voices_dir=voices_dir) as second, Client(second.target) as client:
        assert client.get_voice("keeper").voice.description == "kept across restarts"
        assert client.synthesize("Still here.", voice="keeper").duration_seconds > 0
        client.delete_voice("keeper")
    assert not any(p.name == "keeper" for p in voices_dir.iterdir())  # nothing half-deleted left behind


def test_deleting_a_voice_does_not_break_work_queued_with_it(tmp_path):
    gate = threading.Event()
    engine = ToneEngine(cloning=True, gate=gate)
    with ServerThread(engine, voices_dir=tmp_path, cache_mb=0) as server, Client(server.target) as client:
        client.create_voice("fleeting", ANNA)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = pool.submit(client.synthesize, "Holds the engine.")
            wait_until(lambda: server.batcher.running_batches == 1, 10, "the first batch to start")
            queued = pool.submit(client.synthesize, "Queued with the voice. Two sentences.", voice="fleeting")
            wait_until(lambda: server.batcher.queue_depth >= 1, 10, "the saved voice's work to queue")
            client.delete_voice("fleeting")
            gate.set()
            assert first.result(30).duration_seconds > 0
            assert queued.result(30).duration_seconds > 0


def test_piper_cannot_save_voices(piper_server):
    with Client(piper_server.target) as client:
        with pytest.raises(FailedPreconditionError, match="cannot clone"):
            client.create_voice("anna", ANNA)
        voices = client.voices()
    assert [(v.name, list(v.languages), v.kind) for v in voices.voices] == [("joe", ["en"], pb.VOICE_KIND_BUILT_IN)]


def test_grpc_status_codes_are_the_documented_ones(server):
    """The codes themselves, not only the SDK's classes built on them."""
    with Client(server.target) as client:
        for call, code in (
            (lambda: client.get_voice("nobody"), grpc.StatusCode.NOT_FOUND),
            (lambda: client.create_voice("tone", ANNA), grpc.StatusCode.ALREADY_EXISTS),
            (lambda: client.create_voice("Bad Name", ANNA), grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(Exception) as caught:
                call()
            assert caught.value.code == code
