"""The one place where protobuf messages and domain types are translated."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence

from google.api import httpbody_pb2
from voxbatch.tts.v1 import tts_pb2 as pb

from ..audio.encoding import MIME_TYPES
from ..domain import AudioEncoding, EngineParams, Priority, ReferenceClip, SynthesisRequest, Voice
from ..errors import InvalidInput

_ENCODINGS = {
    pb.AUDIO_ENCODING_UNSPECIFIED: AudioEncoding.WAV,
    pb.AUDIO_ENCODING_WAV: AudioEncoding.WAV,
    pb.AUDIO_ENCODING_FLAC: AudioEncoding.FLAC,
    pb.AUDIO_ENCODING_OGG_OPUS: AudioEncoding.OGG_OPUS,
    pb.AUDIO_ENCODING_MP3: AudioEncoding.MP3,
    pb.AUDIO_ENCODING_PCM_S16LE: AudioEncoding.PCM_S16LE,
}
_ENCODINGS_PB = {v: k for k, v in _ENCODINGS.items() if k != pb.AUDIO_ENCODING_UNSPECIFIED}
_PRIORITIES = {
    pb.PRIORITY_UNSPECIFIED: Priority.INTERACTIVE,
    pb.PRIORITY_INTERACTIVE: Priority.INTERACTIVE,
    pb.PRIORITY_BACKGROUND: Priority.BACKGROUND,
}


def synthesis_request(msg: pb.SynthesizeRequest | pb.StreamSynthesizeRequest) -> SynthesisRequest:
    """Both request messages carry the same fields."""
    if msg.encoding not in _ENCODINGS:
        raise InvalidInput(f"unknown encoding value {msg.encoding}; see AudioEncoding in the contract")
    if msg.priority not in _PRIORITIES:
        raise InvalidInput(f"unknown priority value {msg.priority}; use INTERACTIVE or BACKGROUND")
    p = msg.parameters
    params = EngineParams(
        cfg_value=p.cfg_value if p.HasField("cfg_value") else None,
        inference_steps=p.inference_steps if p.HasField("inference_steps") else None,
        temperature=p.temperature if p.HasField("temperature") else None,
        seed=p.seed if p.HasField("seed") else None,
        speaking_rate=p.speaking_rate if p.HasField("speaking_rate") else None,
        retry_badcase=p.retry_badcase if p.HasField("retry_badcase") else None,
    )
    reference = _clip(msg, "reference")
    return SynthesisRequest(
        text=msg.text,
        voice=msg.voice,
        reference=reference,
        encoding=_ENCODINGS[msg.encoding],
        sample_rate_hz=msg.sample_rate_hz,
        params=params,
        priority=_PRIORITIES[msg.priority],
        request_id=msg.request_id.strip()[:128],
        instructions=msg.instructions,
        prompt=_clip(msg, "prompt"),
        normalize=msg.normalize if msg.HasField("normalize") else None,
    )


def _clip(msg, name: str) -> ReferenceClip | None:
    if not msg.HasField(name):
        return None
    clip = getattr(msg, name)
    if not (clip.audio or clip.transcript):
        return None
    return ReferenceClip(audio=clip.audio, transcript=clip.transcript)


def encoding_pb(encoding: AudioEncoding) -> int:
    return _ENCODINGS_PB[encoding]


def timings_pb(t) -> pb.SynthesisTimings:
    return pb.SynthesisTimings(
        queue_wait_seconds=t.queue_wait_s,
        batch_size=t.batch_size,
        compute_seconds=t.compute_s,
        total_seconds=t.total_s,
        cache_hit=t.cache_hit,
        prompt_encoded=t.prompt_encoded,
        prompt_encode_seconds=t.prompt_encode_s,
        stalls=t.stalls,
        stalled_seconds=t.stalled_s,
        final_slack_seconds=t.final_slack_s,
    )


def synthesize_response(result) -> pb.SynthesizeResponse:
    return pb.SynthesizeResponse(
        audio=result.audio,
        encoding=encoding_pb(result.encoding),
        sample_rate_hz=result.sample_rate,
        duration_seconds=result.duration_s,
        request_id=result.request_id,
        timings=timings_pb(result.timings),
        length_capped=result.length_capped,
        badcase_retries=result.badcase_retries,
    )


def stream_response(piece) -> pb.StreamSynthesizeResponse:
    return pb.StreamSynthesizeResponse(
        audio=piece.audio,
        sequence=piece.sequence,
        sentence_index=piece.sentence.index,
        sentence_count=piece.sentence_count,
        text_start=piece.sentence.start,
        text_end=piece.sentence.end,
        audio_offset_seconds=piece.audio_offset_s,
        duration_seconds=piece.duration_s,
        final=piece.final,
        encoding=encoding_pb(piece.encoding),
        sample_rate_hz=piece.sample_rate,
        request_id=piece.request_id,
        timings=timings_pb(piece.timings),
        length_capped=piece.length_capped,
    )


_VOICE_KINDS = {"built_in": pb.VOICE_KIND_BUILT_IN, "saved": pb.VOICE_KIND_SAVED}


def voice_pb(v: Voice) -> pb.Voice:
    return pb.Voice(
        name=v.name,
        language_code=v.language_code,
        description=v.description,
        sample_rate_hz=v.sample_rate_hz,
        languages=list(v.spoken_languages),
        kind=_VOICE_KINDS.get(v.kind, pb.VOICE_KIND_UNSPECIFIED),
        create_time_unix_seconds=v.created,
        transcript=v.transcript,
        instructions=v.instructions,
        reference_seconds=v.reference_seconds,
    )


def voices_response(voices: Sequence[Voice], default_voice: str) -> pb.ListVoicesResponse:
    return pb.ListVoicesResponse(voices=[voice_pb(v) for v in voices], default_voice=default_voice)


def create_voice_request(msg: pb.CreateVoiceRequest) -> dict:
    """CreateVoice's fields as VoiceLibrary.create's arguments."""
    return dict(
        name=msg.name.strip(),
        clip=ReferenceClip(audio=msg.reference.audio, transcript=msg.reference.transcript),
        description=msg.description,
        languages=tuple(msg.languages),
        instructions=msg.instructions,
    )


def server_info_response(
    *, version, info, settings, limits, queue_depth, running, min_rate, max_rate, batches=(), requests=(), voice_store="",
    steps=(), scheduler=None, streams=(0, 0),
) -> pb.GetServerInfoResponse:
    """`scheduler`: the batcher's SchedulerReport; `streams`: (viable, stalled) streams so far."""
    return pb.GetServerInfoResponse(
        server_version=version,
        engine=info.name,
        model=info.model,
        native_sample_rate_hz=info.native_sample_rate,
        supports_cloning=info.supports_cloning,
        supports_instructions=info.supports_instructions,
        supports_isolated_reference=info.supports_isolated_reference,
        parameters=[
            pb.ParameterSpec(
                name=s.name, minimum=s.minimum, maximum=s.maximum, default_value=s.default, description=s.description
            )
            for s in info.parameters
        ],
        encodings=[encoding_pb(e) for e in AudioEncoding],
        min_sample_rate_hz=min_rate,
        max_sample_rate_hz=max_rate,
        max_text_chars=settings.max_text_chars,
        max_reference_seconds=settings.max_reference_seconds,
        batching=pb.BatchingInfo(
            window_ms=round(limits.window_s * 1000),
            max_batch_size=limits.max_batch_size,
            max_queue_size=settings.max_queue_size,
            memory_budget_bytes=limits.memory_budget_bytes,
            workers=limits.workers,
            scheduler=limits.scheduler,
            stream_margin_ms=round(limits.margin_s * 1000),
            window_mode=limits.window_mode,
            max_queued_per_caller=limits.per_caller_cap,
        ),
        recent_steps=[pb.StepRecord(end_time_unix_seconds=end, rows=rows, seconds=sec) for end, rows, sec in steps],
        step_costs=[pb.StepCost(rows=p.rows, seconds=p.seconds, samples=p.samples) for p in scheduler.step_costs]
        if scheduler is not None else [],
        scheduler=_scheduler_pb(scheduler, streams),
        queue_depth=queue_depth,
        running_batches=running,
        recent_batches=[
            pb.BatchRecord(end_time_unix_seconds=end, size=size, compute_seconds=seconds) for end, size, seconds in batches
        ],
        recent_requests=[
            pb.RequestRecord(
                end_time_unix_seconds=r.end_time,
                total_seconds=r.total_s,
                queue_wait_seconds=r.queue_wait_s,
                streamed=r.streamed,
                first_audio_seconds=r.first_audio_s,
            )
            for r in requests
        ],
        voice_store=voice_store,
        max_saved_voices=settings.max_saved_voices,
        normalize_default=info.normalize_default,
        decode_step=info.decode_step,
        max_voice_clip_bytes=settings.max_voice_clip_mb << 20,
    )


def _scheduler_pb(report, streams) -> pb.SchedulerStats | None:
    if report is None:
        return None
    return pb.SchedulerStats(
        rows_admitted=report.rows_admitted, held_back=report.held_back, streams_viable=streams[0],
        streams_stalled=streams[1], refused_caller_cap=report.refused_caller_cap, prefill_seconds=report.prefill_s,
        finish_seconds=report.finish_s, audio_per_step_seconds=report.audio_per_step_s,
    )


# -- CreateSpeech: OpenAI's speech request ------------------------------------------------------

# OpenAI's response_format -> (our encoding, sample rate; 0 = the engine's native rate). OpenAI's
# pcm is headerless 16-bit little-endian at 24 kHz, so clients expect exactly that.
OPENAI_FORMATS = {
    "mp3": (AudioEncoding.MP3, 0),
    "opus": (AudioEncoding.OGG_OPUS, 0),
    "flac": (AudioEncoding.FLAC, 0),
    "wav": (AudioEncoding.WAV, 0),
    "pcm": (AudioEncoding.PCM_S16LE, 24000),
}
OPENAI_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"})
OPENAI_SPEED = (0.25, 4.0)


def speech_request(msg: pb.CreateSpeechRequest, voices: Collection[str]) -> SynthesisRequest:
    """OpenAI's fields onto a synthesis request; `voices` are the engine's voice names."""
    fmt = msg.response_format.strip().lower() or "mp3"
    if fmt not in OPENAI_FORMATS:
        if fmt == "aac":
            raise InvalidInput("response_format aac is not supported: this server cannot encode AAC; use mp3, opus, flac, wav or pcm")
        raise InvalidInput(f"unknown response_format {msg.response_format!r}; use mp3, opus, flac, wav or pcm")
    if msg.stream_format.strip().lower() not in ("", "audio"):
        raise InvalidInput(f"stream_format {msg.stream_format!r} is not supported; use audio (or leave it out)")
    encoding, rate = OPENAI_FORMATS[fmt]
    voice = msg.voice.strip()
    if voice not in voices:
        if voice and voice.lower() not in OPENAI_VOICES:
            raise InvalidInput(
                f"unknown voice {voice!r}; use one of this server's voices ({', '.join(sorted(voices))}) "
                f"or an OpenAI voice name for the default voice ({', '.join(sorted(OPENAI_VOICES))})"
            )
        voice = ""  # an OpenAI voice name: the server's default voice
    speaking_rate = None
    if msg.HasField("speed"):
        low, high = OPENAI_SPEED
        if not (math.isfinite(msg.speed) and low <= msg.speed <= high):
            raise InvalidInput(f"speed must be between {low:g} and {high:g}, not {msg.speed:g}")
        if msg.speed != 1.0:
            speaking_rate = msg.speed
    return SynthesisRequest(
        text=msg.input,
        voice=voice,
        encoding=encoding,
        sample_rate_hz=rate,
        params=EngineParams(speaking_rate=speaking_rate),
        instructions=msg.instructions,
    )


def content_type(encoding: AudioEncoding, sample_rate: int) -> str:
    if encoding is AudioEncoding.PCM_S16LE:
        return f"audio/pcm;rate={sample_rate};channels=1"
    if encoding is AudioEncoding.OGG_OPUS:
        return "audio/ogg;codecs=opus"
    return MIME_TYPES[encoding]


def http_body(result) -> httpbody_pb2.HttpBody:
    """A synthesis result as raw bytes with their Content-Type (Envoy sends them as the HTTP body)."""
    return httpbody_pb2.HttpBody(content_type=content_type(result.encoding, result.sample_rate), data=result.audio)
