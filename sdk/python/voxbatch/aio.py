"""Asyncio client, the same API as Client with coroutines and an async iterator."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from voxbatch.tts.v1 import tts_pb2 as pb
from voxbatch.tts.v1 import tts_pb2_grpc

from .audio import Audio, Chunk
from .client import CHANNEL_OPTIONS, DEFAULT_TARGET
from .connection import aio_channel, connection
from .errors import from_rpc_error
from .options import Reference, build_request, create_voice_request


class AsyncClient:
    """    async with AsyncClient("localhost:50051") as tts:
            audio = await tts.synthesize("Hello there.")
    """

    def __init__(
        self,
        target: str = DEFAULT_TARGET,
        *,
        timeout: float | None = 300.0,
        api_key: str | None = None,
        ca_file: str | os.PathLike | None = None,
        client_cert: str | os.PathLike | None = None,
        client_key: str | os.PathLike | None = None,
    ) -> None:
        conn = connection(target, api_key=api_key, ca_file=ca_file, client_cert=client_cert, client_key=client_key)
        self._metadata = conn.metadata
        self._channel = aio_channel(conn, CHANNEL_OPTIONS)
        self._stub = tts_pb2_grpc.TtsServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self.timeout = timeout

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def synthesize(self, text: str, *, timeout: float | None = None, **options: Any) -> Audio:
        request = build_request(pb.SynthesizeRequest, text, **options)
        try:
            return Audio.from_response(await self._stub.Synthesize(request, timeout=timeout or self.timeout, metadata=self._metadata))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    async def stream(self, text: str, *, timeout: float | None = None, **options: Any) -> AsyncIterator[Chunk]:
        request = build_request(pb.StreamSynthesizeRequest, text, **options)
        call = self._stub.StreamSynthesize(request, timeout=timeout or self.timeout, metadata=self._metadata)
        try:
            async for response in call:
                yield Chunk.from_response(response)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()

    async def voices(self) -> pb.ListVoicesResponse:
        try:
            return await self._stub.ListVoices(pb.ListVoicesRequest(), timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    async def create_voice(
        self, name: str, reference: Reference, *, description: str = "", languages: Sequence[str] = (), instructions: str = ""
    ) -> pb.Voice:
        """Save a cloned voice under `name`; afterwards `synthesize(..., voice=name)` uses it."""
        request = create_voice_request(name, reference, description=description, languages=languages, instructions=instructions)
        try:
            return (await self._stub.CreateVoice(request, timeout=self.timeout)).voice
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    async def get_voice(self, name: str, *, include_audio: bool = False) -> pb.GetVoiceResponse:
        try:
            return await self._stub.GetVoice(pb.GetVoiceRequest(name=name, include_audio=include_audio), timeout=self.timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    async def delete_voice(self, name: str) -> None:
        try:
            await self._stub.DeleteVoice(pb.DeleteVoiceRequest(name=name), timeout=self.timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    async def server_info(self) -> pb.GetServerInfoResponse:
        try:
            return await self._stub.GetServerInfo(pb.GetServerInfoRequest(), timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    async def health(self, service: str = "") -> str:
        try:
            response = await self._health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
