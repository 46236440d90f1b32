"""The TtsService servicer: thin, it converts messages and hands work to the pipeline."""

from __future__ import annotations

import dataclasses
import time

import grpc
from google.api import httpbody_pb2
from voxbatch.tts.v1 import tts_pb2 as pb
from voxbatch.tts.v1 import tts_pb2_grpc

from .. import __version__
from ..auth.caller import charge_audio
from ..audio.encoding import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE
from ..batching import Batcher
from ..logs import request_context
from ..metrics import Metrics
from ..settings import Settings
from ..synthesis import Synthesizer
from . import convert, status
from .identity import caller_identity


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    now = time.monotonic()  # read first: the deadline may come out a hair early, never late
    remaining = context.time_remaining()
    return None if remaining is None else now + remaining


class TtsServicer(tts_pb2_grpc.TtsServiceServicer):
    def __init__(self, synthesizer: Synthesizer, batcher: Batcher, settings: Settings, metrics: Metrics | None = None) -> None:
        self._synth = synthesizer
        self._batcher = batcher
        self._settings = settings
        self._voices = synthesizer.voices
        self.metrics = metrics  # status.py records every call's outcome here

    def _from(self, context: grpc.aio.ServicerContext, request):
        """The domain request, labelled with who sent it (fair share and the per-caller cap)."""
        return dataclasses.replace(request, caller=caller_identity(context, self._settings.trust_forwarded_for))

    @status.unary
    async def Synthesize(self, request: pb.SynthesizeRequest, context) -> pb.SynthesizeResponse:
        with request_context(request.request_id or "-"):
            result = await self._synth.synthesize(self._from(context, convert.synthesis_request(request)), _deadline(context))
        charge_audio(result.duration_s)  # the caller's daily audio quota
        return convert.synthesize_response(result)

    @status.server_stream
    async def StreamSynthesize(self, request: pb.StreamSynthesizeRequest, context):
        with request_context(request.request_id or "-"):
            async for piece in self._synth.stream(self._from(context, convert.synthesis_request(request)), _deadline(context)):
                charge_audio(piece.duration_s)
                yield convert.stream_response(piece)

    @status.unary
    async def ListVoices(self, request: pb.ListVoicesRequest, context) -> pb.ListVoicesResponse:
        return convert.voices_response(await self._voices.list(), self._synth.engine.info.default_voice)

    @status.unary
    async def CreateVoice(self, request: pb.CreateVoiceRequest, context) -> pb.CreateVoiceResponse:
        voice = await self._voices.create(**convert.create_voice_request(request))
        return pb.CreateVoiceResponse(voice=convert.voice_pb(voice))

    @status.unary
    async def GetVoice(self, request: pb.GetVoiceRequest, context) -> pb.GetVoiceResponse:
        voice, clip = await self._voices.get(request.name.strip())
        return pb.GetVoiceResponse(voice=convert.voice_pb(voice), reference_audio=clip if request.include_audio else b"")

    @status.unary
    async def DeleteVoice(self, request: pb.DeleteVoiceRequest, context) -> pb.DeleteVoiceResponse:
        await self._voices.delete(request.name.strip())
        return pb.DeleteVoiceResponse()

    @status.unary
    async def GetServerInfo(self, request: pb.GetServerInfoRequest, context) -> pb.GetServerInfoResponse:
        return convert.server_info_response(
            version=__version__,
            info=self._synth.engine.info,
            settings=self._settings,
            limits=self._batcher.limits,
            queue_depth=self._batcher.queue_depth,
            running=self._batcher.running_batches,
            min_rate=MIN_SAMPLE_RATE,
            max_rate=MAX_SAMPLE_RATE,
            batches=list(self._batcher.stats.recent),
            requests=list(self._synth.recent),
            voice_store=self._voices.store.backend,
            steps=list(self._batcher.stats.steps),
            scheduler=self._batcher.scheduler_report(),
            streams=(self._synth.streams["viable"], self._synth.streams["stalled"]),
        )

    @status.unary
    async def CreateSpeech(self, request: pb.CreateSpeechRequest, context) -> httpbody_pb2.HttpBody:
        voices = {v.name for v in await self._voices.list()}
        result = await self._synth.synthesize(self._from(context, convert.speech_request(request, voices)), _deadline(context))
        charge_audio(result.duration_s)
        return convert.http_body(result)
