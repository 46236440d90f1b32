"""OpenAI's speech request onto our synthesis (grpc_api/convert.py), CreateSpeech over gRPC, and
the operations settings."""

from __future__ import annotations

import io

import pytest
import soundfile as sf
from google.api import httpbody_pb2
from voxbatch.tts.v1 import tts_pb2 as pb
from voxbatch.tts.v1 import tts_pb2_grpc

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch_server.domain import AudioEncoding
from voxbatch_server.errors import InvalidInput
from voxbatch_server.grpc_api.convert import speech_request
from voxbatch_server.settings import Settings, SettingsError

VOICES = {"joe", "nova-like"}


@pytest.mark.parametrize(
    ("fmt", "encoding", "rate"),
    [("", AudioEncoding.MP3, 0), ("mp3", AudioEncoding.MP3, 0), ("OPUS", AudioEncoding.OGG_OPUS, 0),
     ("flac", AudioEncoding.FLAC, 0), ("wav", AudioEncoding.WAV, 0), ("pcm", AudioEncoding.PCM_S16LE, 24000)],
)
def test_openai_formats_map_onto_our_encodings(fmt, encoding, rate):
    request = speech_request(pb.CreateSpeechRequest(model="tts-1", input="Hi.", voice="joe", response_format=fmt), VOICES)
    assert request.encoding is encoding and request.sample_rate_hz == rate
    assert request.text == "Hi." and request.voice == "joe"


def test_formats_we_cannot_produce_are_refused_clearly():
    with pytest.raises(InvalidInput, match="aac is not supported.*use mp3, opus, flac, wav or pcm"):
        speech_request(pb.CreateSpeechRequest(input="Hi.", response_format="aac"), VOICES)
    with pytest.raises(InvalidInput, match="unknown response_format 'ogg'"):
        speech_request(pb.CreateSpeechRequest(input="Hi.", response_format="ogg"), VOICES)
    with pytest.raises(InvalidInput, match="stream_format 'sse' is not supported"):
        speech_request(pb.CreateSpeechRequest(input="Hi.", stream_format="sse"), VOICES)


def test_openai_voice_names_select_the_default_voice_and_ours_are_kept():
    assert speech_request(pb.CreateSpeechRequest(input="Hi.", voice="alloy"), VOICES).voice == ""
    assert speech_request(pb.CreateSpeechRequest(input="Hi.", voice="Shimmer"), VOICES).voice == ""
    assert speech_request(pb.CreateSpeechRequest(input="Hi.", voice="nova-like"), VOICES).voice == "nova-like"
    # Anything else is refused with both lists: ours and OpenAI's names.
    with pytest.raises(InvalidInput, match="unknown voice 'zelda'; use one of this server's voices .*alloy"):
        speech_request(pb.CreateSpeechRequest(input="Hi.", voice="zelda"), VOICES)


def test_speed_becomes_the_speaking_rate_within_openais_range():
    assert speech_request(pb.CreateSpeechRequest(input="Hi."), VOICES).params.given() == {}
    assert speech_request(pb.CreateSpeechRequest(input="Hi.", speed=1.0), VOICES).params.given() == {}
    assert speech_request(pb.CreateSpeechRequest(input="Hi.", speed=1.5), VOICES).params.speaking_rate == 1.5
    for bad in (0.1, 4.5, float("nan")):
        with pytest.raises(InvalidInput, match="speed must be between 0.25 and 4"):
            speech_request(pb.CreateSpeechRequest(input="Hi.", speed=bad), VOICES)


def test_create_speech_over_grpc_answers_an_http_body():
    import grpc

    with ServerThread(ToneEngine()) as server, grpc.insecure_channel(server.target) as channel:
        stub = tts_pb2_grpc.TtsServiceStub(channel)
        body = stub.CreateSpeech(pb.CreateSpeechRequest(model="tts-1", input="A tone.", voice="alloy", response_format="wav"))
        assert isinstance(body, httpbody_pb2.HttpBody) and body.content_type == "audio/wav"
        samples, rate = sf.read(io.BytesIO(body.data))
        assert rate == 16000 and len(samples) > 0
        for request, words in (
            (pb.CreateSpeechRequest(input="A tone.", voice="zelda"), "unknown voice 'zelda'; use one of this server's voices (low, tone) or an OpenAI voice name"),
            (pb.CreateSpeechRequest(input="A tone.", speed=3.0), "speaking_rate must be between 0.5 and 2"),
            (pb.CreateSpeechRequest(input=""), "text is empty"),
        ):
            with pytest.raises(grpc.RpcError) as error:
                stub.CreateSpeech(request)
            assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT and words in error.value.details()


def test_operations_settings_have_flags_environment_and_validation():
    settings = Settings.from_argv(["--metrics-port", "9500", "--redis-url", "redis://cache:6379/1"], environ={"VOXBATCH_REDIS_TTL_S": "60"})
    assert (settings.metrics_port, settings.redis_url, settings.redis_ttl_s) == (9500, "redis://cache:6379/1", 60)
    assert Settings().metrics_port == 9464 and Settings().redis_url == ""
    with pytest.raises(SettingsError) as error:
        Settings(metrics_port=70000, redis_url="http://cache", redis_ttl_s=0)
    message = str(error.value)
    assert "metrics_port must be 0-65535" in message and "redis_url must start with redis://" in message
    assert "redis_ttl_s must be 1-31536000" in message
    with pytest.raises(SettingsError, match="metrics_port and port must differ"):
        Settings(port=9000, metrics_port=9000)
