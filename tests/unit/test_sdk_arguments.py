"""The Python SDK checks its arguments before any call and reports bad ones as InvalidRequestError
(which is also a ValueError), never as bare TypeError or ValueError from protobuf."""

from __future__ import annotations

import pytest

from voxbatch import Client, InvalidRequestError, Reference


@pytest.mark.parametrize("options, message", [
    (dict(seed=-1), "seed must be between 0 and 18446744073709551615, not -1"),
    (dict(seed=2**64), "seed must be between 0 and"),
    (dict(seed=1.5), "seed must be a whole number"),
    (dict(encoding="aac"), "unknown encoding 'aac'; use one of wav, flac, ogg_opus, mp3, pcm_s16le"),
    (dict(encoding=42), "unknown encoding 42"),
    (dict(sample_rate=44100.0), "sample_rate must be a whole number of Hz"),
    (dict(sample_rate=-1), "sample_rate must be between 0 and"),
    (dict(inference_steps=0), "inference_steps must be between 1 and"),
    (dict(temperature="hot"), "temperature must be a number, not 'hot'"),
    (dict(speaking_rate=True), "speaking_rate must be a number"),
    (dict(priority=9), "unknown priority 9"),
    (dict(voice=3), "voice must be a string"),
    (dict(reference=b"raw bytes"), "reference must be a voxbatch.Reference"),
])
def test_bad_arguments_raise_invalid_request_error_before_any_call(options, message):
    with Client("127.0.0.1:1", timeout=1) as client:  # nothing listens there: no call may be made
        for call in (lambda: client.synthesize("Hi.", **options), lambda: list(client.stream("Hi.", **options))):
            with pytest.raises(InvalidRequestError) as raised:
                call()
            assert message in raised.value.details and raised.value.code.name == "INVALID_ARGUMENT"
            assert isinstance(raised.value, ValueError)


def test_good_arguments_of_every_kind_pass_the_checks():
    from voxbatch.options import build_request
    from voxbatch.tts.v1 import tts_pb2 as pb

    request = build_request(pb.SynthesizeRequest, "Hi.", seed=2**64 - 1, encoding="ogg", sample_rate=48000,
                            temperature=0, cfg_value=2, reference=Reference(b"RIFF", "hi"))
    assert request.parameters.seed == 2**64 - 1 and request.sample_rate_hz == 48000
