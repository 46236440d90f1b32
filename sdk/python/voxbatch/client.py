"""Blocking client."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from voxbatch.tts.v1 import tts_pb2 as pb
from voxbatch.tts.v1 import tts_pb2_grpc

from .audio import Audio, Chunk
from .connection import connection, sync_channel
from .errors import from_rpc_error
from .options import Reference, build_request, create_voice_request

DEFAULT_TARGET = "localhost:50051"
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 256 << 20),
    ("grpc.max_send_message_length", 32 << 20),
]


class Client:
    """Talks to a voxbatch server.

        with Client("localhost:50051") as tts:
            tts.synthesize("Hello there.").save("hello.wav")

    Options of `synthesize` and `stream`: voice, encoding ("wav", "flac", "ogg_opus", "mp3",
    "pcm_s16le"), sample_rate (0 = native), reference (voice cloning), cfg_value,
    inference_steps, temperature, seed, speaking_rate, priority, request_id; instructions (how the
    voice should sound, VoxCPM2) and prompt (a clip with transcript to continue from, next to a
    reference without one, VoxCPM2), retry_badcase (VoxCPM; unset = the engine's rule).
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float | None = 300.0,
        channel: grpc.Channel | None = None,
        api_key: str | None = None,
        ca_file: str | os.PathLike | None = None,
        client_cert: str | os.PathLike | None = None,
        client_key: str | os.PathLike | None = None,
    ) -> None:
        """`target`: "host:port" (plaintext) or "https://host[:port]" (TLS); `api_key` (default:
        VOXBATCH_API_KEY) goes with every call; `ca_file` verifies the server's certificate;
        `client_cert`/`client_key` for mutual TLS. See voxbatch.connection."""
        conn = connection(target, api_key=api_key, ca_file=ca_file, client_cert=client_cert, client_key=client_key)
        self._metadata = conn.metadata
        self._channel = channel or sync_channel(conn, CHANNEL_OPTIONS)
        self._stub = tts_pb2_grpc.TtsServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self.timeout = timeout

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def synthesize(self, text: str, *, timeout: float | None = None, **options: Any) -> Audio:
        request = build_request(pb.SynthesizeRequest, text, **options)
        try:
            return Audio.from_response(self._stub.Synthesize(request, timeout=timeout or self.timeout, metadata=self._metadata))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def stream(self, text: str, *, timeout: float | None = None, **options: Any) -> Iterator[Chunk]:
        """Yields chunks in order; leaving the loop early cancels the server-side work."""
        request = build_request(pb.StreamSynthesizeRequest, text, **options)
        call = self._stub.StreamSynthesize(request, timeout=timeout or self.timeout, metadata=self._metadata)
        try:
            for response in call:
                yield Chunk.from_response(response)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()

    def voices(self) -> pb.ListVoicesResponse:
        try:
            return self._stub.ListVoices(pb.ListVoicesRequest(), timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def create_voice(
        self, name: str, reference: Reference, *, description: str = "", languages: Sequence[str] = (), instructions: str = ""
    ) -> pb.Voice:
        """Save a cloned voice under `name`; afterwards `synthesize(..., voice=name)` uses it."""
        request = create_voice_request(name, reference, description=description, languages=languages, instructions=instructions)
        try:
            return self._stub.CreateVoice(request, timeout=self.timeout).voice
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def get_voice(self, name: str, *, include_audio: bool = False) -> pb.GetVoiceResponse:
        try:
            return self._stub.GetVoice(pb.GetVoiceRequest(name=name, include_audio=include_audio), timeout=self.timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def delete_voice(self, name: str) -> None:
        try:
            self._stub.DeleteVoice(pb.DeleteVoiceRequest(name=name), timeout=self.timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def server_info(self) -> pb.GetServerInfoResponse:
        try:
            return self._stub.GetServerInfo(pb.GetServerInfoRequest(), timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def health(self, service: str = "") -> str:
        """SERVING, NOT_SERVING, ... as the standard health service reports it."""
        try:
            response = self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
