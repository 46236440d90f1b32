from google.api import annotations_pb2 as _annotations_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_WAV: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_FLAC: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_OGG_OPUS: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_MP3: _ClassVar[AudioEncoding]
    AUDIO_ENCODING_PCM_S16LE: _ClassVar[AudioEncoding]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_INTERACTIVE: _ClassVar[Priority]
    PRIORITY_BACKGROUND: _ClassVar[Priority]

class VoiceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOICE_KIND_UNSPECIFIED: _ClassVar[VoiceKind]
    VOICE_KIND_BUILT_IN: _ClassVar[VoiceKind]
    VOICE_KIND_SAVED: _ClassVar[VoiceKind]
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
AUDIO_ENCODING_WAV: AudioEncoding
AUDIO_ENCODING_FLAC: AudioEncoding
AUDIO_ENCODING_OGG_OPUS: AudioEncoding
AUDIO_ENCODING_MP3: AudioEncoding
AUDIO_ENCODING_PCM_S16LE: AudioEncoding
PRIORITY_UNSPECIFIED: Priority
PRIORITY_INTERACTIVE: Priority
PRIORITY_BACKGROUND: Priority
VOICE_KIND_UNSPECIFIED: VoiceKind
VOICE_KIND_BUILT_IN: VoiceKind
VOICE_KIND_SAVED: VoiceKind

class ReferenceAudio(_message.Message):
    __slots__ = ("audio", "transcript")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    transcript: str
    def __init__(self, audio: _Optional[bytes] = ..., transcript: _Optional[str] = ...) -> None: ...

class SynthesisParameters(_message.Message):
    __slots__ = ("cfg_value", "inference_steps", "temperature", "seed", "speaking_rate", "retry_badcase")
    CFG_VALUE_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SPEAKING_RATE_FIELD_NUMBER: _ClassVar[int]
    RETRY_BADCASE_FIELD_NUMBER: _ClassVar[int]
    cfg_value: float
    inference_steps: int
    temperature: float
    seed: int
    speaking_rate: float
    retry_badcase: bool
    def __init__(self, cfg_value: _Optional[float] = ..., inference_steps: _Optional[int] = ..., temperature: _Optional[float] = ..., seed: _Optional[int] = ..., speaking_rate: _Optional[float] = ..., retry_badcase: _Optional[bool] = ...) -> None: ...

class SynthesizeRequest(_message.Message):
    __slots__ = ("text", "voice", "reference", "encoding", "sample_rate_hz", "parameters", "priority", "request_id", "instructions", "prompt", "normalize")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    text: str
    voice: str
    reference: ReferenceAudio
    encoding: AudioEncoding
    sample_rate_hz: int
    parameters: SynthesisParameters
    priority: Priority
    request_id: str
    instructions: str
    prompt: ReferenceAudio
    normalize: bool
    def __init__(self, text: _Optional[str] = ..., voice: _Optional[str] = ..., reference: _Optional[_Union[ReferenceAudio, _Mapping]] = ..., encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ..., parameters: _Optional[_Union[SynthesisParameters, _Mapping]] = ..., priority: _Optional[_Union[Priority, str]] = ..., request_id: _Optional[str] = ..., instructions: _Optional[str] = ..., prompt: _Optional[_Union[ReferenceAudio, _Mapping]] = ..., normalize: _Optional[bool] = ...) -> None: ...

class SynthesisTimings(_message.Message):
    __slots__ = ("queue_wait_seconds", "batch_size", "compute_seconds", "total_seconds", "cache_hit", "prompt_encoded", "prompt_encode_seconds", "stalls", "stalled_seconds", "final_slack_seconds")
    QUEUE_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CACHE_HIT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_ENCODED_FIELD_NUMBER: _ClassVar[int]
    PROMPT_ENCODE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STALLS_FIELD_NUMBER: _ClassVar[int]
    STALLED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FINAL_SLACK_SECONDS_FIELD_NUMBER: _ClassVar[int]
    queue_wait_seconds: float
    batch_size: int
    compute_seconds: float
    total_seconds: float
    cache_hit: bool
    prompt_encoded: bool
    prompt_encode_seconds: float
    stalls: int
    stalled_seconds: float
    final_slack_seconds: float
    def __init__(self, queue_wait_seconds: _Optional[float] = ..., batch_size: _Optional[int] = ..., compute_seconds: _Optional[float] = ..., total_seconds: _Optional[float] = ..., cache_hit: _Optional[bool] = ..., prompt_encoded: _Optional[bool] = ..., prompt_encode_seconds: _Optional[float] = ..., stalls: _Optional[int] = ..., stalled_seconds: _Optional[float] = ..., final_slack_seconds: _Optional[float] = ...) -> None: ...

class SynthesizeResponse(_message.Message):
    __slots__ = ("audio", "encoding", "sample_rate_hz", "duration_seconds", "request_id", "timings", "length_capped", "badcase_retries")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    LENGTH_CAPPED_FIELD_NUMBER: _ClassVar[int]
    BADCASE_RETRIES_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    encoding: AudioEncoding
    sample_rate_hz: int
    duration_seconds: float
    request_id: str
    timings: SynthesisTimings
    length_capped: bool
    badcase_retries: int
    def __init__(self, audio: _Optional[bytes] = ..., encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ..., duration_seconds: _Optional[float] = ..., request_id: _Optional[str] = ..., timings: _Optional[_Union[SynthesisTimings, _Mapping]] = ..., length_capped: _Optional[bool] = ..., badcase_retries: _Optional[int] = ...) -> None: ...

class StreamSynthesizeRequest(_message.Message):
    __slots__ = ("text", "voice", "reference", "encoding", "sample_rate_hz", "parameters", "priority", "request_id", "instructions", "prompt", "normalize")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    text: str
    voice: str
    reference: ReferenceAudio
    encoding: AudioEncoding
    sample_rate_hz: int
    parameters: SynthesisParameters
    priority: Priority
    request_id: str
    instructions: str
    prompt: ReferenceAudio
    normalize: bool
    def __init__(self, text: _Optional[str] = ..., voice: _Optional[str] = ..., reference: _Optional[_Union[ReferenceAudio, _Mapping]] = ..., encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ..., parameters: _Optional[_Union[SynthesisParameters, _Mapping]] = ..., priority: _Optional[_Union[Priority, str]] = ..., request_id: _Optional[str] = ..., instructions: _Optional[str] = ..., prompt: _Optional[_Union[ReferenceAudio, _Mapping]] = ..., normalize: _Optional[bool] = ...) -> None: ...

class StreamSynthesizeResponse(_message.Message):
    __slots__ = ("audio", "sequence", "sentence_index", "sentence_count", "text_start", "text_end", "audio_offset_seconds", "duration_seconds", "final", "encoding", "sample_rate_hz", "request_id", "timings", "length_capped")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_INDEX_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    TEXT_START_FIELD_NUMBER: _ClassVar[int]
    TEXT_END_FIELD_NUMBER: _ClassVar[int]
    AUDIO_OFFSET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    LENGTH_CAPPED_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    sequence: int
    sentence_index: int
    sentence_count: int
    text_start: int
    text_end: int
    audio_offset_seconds: float
    duration_seconds: float
    final: bool
    encoding: AudioEncoding
    sample_rate_hz: int
    request_id: str
    timings: SynthesisTimings
    length_capped: bool
    def __init__(self, audio: _Optional[bytes] = ..., sequence: _Optional[int] = ..., sentence_index: _Optional[int] = ..., sentence_count: _Optional[int] = ..., text_start: _Optional[int] = ..., text_end: _Optional[int] = ..., audio_offset_seconds: _Optional[float] = ..., duration_seconds: _Optional[float] = ..., final: _Optional[bool] = ..., encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ..., request_id: _Optional[str] = ..., timings: _Optional[_Union[SynthesisTimings, _Mapping]] = ..., length_capped: _Optional[bool] = ...) -> None: ...

class ListVoicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Voice(_message.Message):
    __slots__ = ("name", "language_code", "description", "sample_rate_hz", "languages", "kind", "create_time_unix_seconds", "transcript", "instructions", "reference_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_CODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_UNIX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TRANSCRIPT_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    language_code: str
    description: str
    sample_rate_hz: int
    languages: _containers.RepeatedScalarFieldContainer[str]
    kind: VoiceKind
    create_time_unix_seconds: float
    transcript: str
    instructions: str
    reference_seconds: float
    def __init__(self, name: _Optional[str] = ..., language_code: _Optional[str] = ..., description: _Optional[str] = ..., sample_rate_hz: _Optional[int] = ..., languages: _Optional[_Iterable[str]] = ..., kind: _Optional[_Union[VoiceKind, str]] = ..., create_time_unix_seconds: _Optional[float] = ..., transcript: _Optional[str] = ..., instructions: _Optional[str] = ..., reference_seconds: _Optional[float] = ...) -> None: ...

class CreateVoiceRequest(_message.Message):
    __slots__ = ("name", "description", "reference", "languages", "instructions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    reference: ReferenceAudio
    languages: _containers.RepeatedScalarFieldContainer[str]
    instructions: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., reference: _Optional[_Union[ReferenceAudio, _Mapping]] = ..., languages: _Optional[_Iterable[str]] = ..., instructions: _Optional[str] = ...) -> None: ...

class CreateVoiceResponse(_message.Message):
    __slots__ = ("voice",)
    VOICE_FIELD_NUMBER: _ClassVar[int]
    voice: Voice
    def __init__(self, voice: _Optional[_Union[Voice, _Mapping]] = ...) -> None: ...

class GetVoiceRequest(_message.Message):
    __slots__ = ("name", "include_audio")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_AUDIO_FIELD_NUMBER: _ClassVar[int]
    name: str
    include_audio: bool
    def __init__(self, name: _Optional[str] = ..., include_audio: _Optional[bool] = ...) -> None: ...

class GetVoiceResponse(_message.Message):
    __slots__ = ("voice", "reference_audio")
    VOICE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_AUDIO_FIELD_NUMBER: _ClassVar[int]
    voice: Voice
    reference_audio: bytes
    def __init__(self, voice: _Optional[_Union[Voice, _Mapping]] = ..., reference_audio: _Optional[bytes] = ...) -> None: ...

class DeleteVoiceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteVoiceResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListVoicesResponse(_message.Message):
    __slots__ = ("voices", "default_voice")
    VOICES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VOICE_FIELD_NUMBER: _ClassVar[int]
    voices: _containers.RepeatedCompositeFieldContainer[Voice]
    default_voice: str
    def __init__(self, voices: _Optional[_Iterable[_Union[Voice, _Mapping]]] = ..., default_voice: _Optional[str] = ...) -> None: ...

class GetServerInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ParameterSpec(_message.Message):
    __slots__ = ("name", "minimum", "maximum", "default_value", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    minimum: float
    maximum: float
    default_value: float
    description: str
    def __init__(self, name: _Optional[str] = ..., minimum: _Optional[float] = ..., maximum: _Optional[float] = ..., default_value: _Optional[float] = ..., description: _Optional[str] = ...) -> None: ...

class BatchingInfo(_message.Message):
    __slots__ = ("window_ms", "max_batch_size", "max_queue_size", "memory_budget_bytes", "workers", "scheduler", "stream_margin_ms", "window_mode", "max_queued_per_caller")
    WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BUDGET_BYTES_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    STREAM_MARGIN_MS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_MODE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_PER_CALLER_FIELD_NUMBER: _ClassVar[int]
    window_ms: int
    max_batch_size: int
    max_queue_size: int
    memory_budget_bytes: int
    workers: int
    scheduler: str
    stream_margin_ms: int
    window_mode: str
    max_queued_per_caller: int
    def __init__(self, window_ms: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., max_queue_size: _Optional[int] = ..., memory_budget_bytes: _Optional[int] = ..., workers: _Optional[int] = ..., scheduler: _Optional[str] = ..., stream_margin_ms: _Optional[int] = ..., window_mode: _Optional[str] = ..., max_queued_per_caller: _Optional[int] = ...) -> None: ...

class GetServerInfoResponse(_message.Message):
    __slots__ = ("server_version", "engine", "model", "native_sample_rate_hz", "supports_cloning", "parameters", "encodings", "min_sample_rate_hz", "max_sample_rate_hz", "max_text_chars", "batching", "queue_depth", "running_batches", "recent_batches", "recent_requests", "supports_instructions", "supports_isolated_reference", "voice_store", "max_saved_voices", "normalize_default", "max_voice_clip_bytes", "recent_steps", "step_costs", "scheduler", "max_reference_seconds", "decode_step")
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NATIVE_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_CLONING_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ENCODINGS_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    MAX_SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    MAX_TEXT_CHARS_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    RUNNING_BATCHES_FIELD_NUMBER: _ClassVar[int]
    RECENT_BATCHES_FIELD_NUMBER: _ClassVar[int]
    RECENT_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    SUPPORTS_ISOLATED_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    VOICE_STORE_FIELD_NUMBER: _ClassVar[int]
    MAX_SAVED_VOICES_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MAX_VOICE_CLIP_BYTES_FIELD_NUMBER: _ClassVar[int]
    RECENT_STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_COSTS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    MAX_REFERENCE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DECODE_STEP_FIELD_NUMBER: _ClassVar[int]
    server_version: str
    engine: str
    model: str
    native_sample_rate_hz: int
    supports_cloning: bool
    parameters: _containers.RepeatedCompositeFieldContainer[ParameterSpec]
    encodings: _containers.RepeatedScalarFieldContainer[AudioEncoding]
    min_sample_rate_hz: int
    max_sample_rate_hz: int
    max_text_chars: int
    batching: BatchingInfo
    queue_depth: int
    running_batches: int
    recent_batches: _containers.RepeatedCompositeFieldContainer[BatchRecord]
    recent_requests: _containers.RepeatedCompositeFieldContainer[RequestRecord]
    supports_instructions: bool
    supports_isolated_reference: bool
    voice_store: str
    max_saved_voices: int
    normalize_default: bool
    max_voice_clip_bytes: int
    recent_steps: _containers.RepeatedCompositeFieldContainer[StepRecord]
    step_costs: _containers.RepeatedCompositeFieldContainer[StepCost]
    scheduler: SchedulerStats
    max_reference_seconds: float
    decode_step: str
    def __init__(self, server_version: _Optional[str] = ..., engine: _Optional[str] = ..., model: _Optional[str] = ..., native_sample_rate_hz: _Optional[int] = ..., supports_cloning: _Optional[bool] = ..., parameters: _Optional[_Iterable[_Union[ParameterSpec, _Mapping]]] = ..., encodings: _Optional[_Iterable[_Union[AudioEncoding, str]]] = ..., min_sample_rate_hz: _Optional[int] = ..., max_sample_rate_hz: _Optional[int] = ..., max_text_chars: _Optional[int] = ..., batching: _Optional[_Union[BatchingInfo, _Mapping]] = ..., queue_depth: _Optional[int] = ..., running_batches: _Optional[int] = ..., recent_batches: _Optional[_Iterable[_Union[BatchRecord, _Mapping]]] = ..., recent_requests: _Optional[_Iterable[_Union[RequestRecord, _Mapping]]] = ..., supports_instructions: _Optional[bool] = ..., supports_isolated_reference: _Optional[bool] = ..., voice_store: _Optional[str] = ..., max_saved_voices: _Optional[int] = ..., normalize_default: _Optional[bool] = ..., max_voice_clip_bytes: _Optional[int] = ..., recent_steps: _Optional[_Iterable[_Union[StepRecord, _Mapping]]] = ..., step_costs: _Optional[_Iterable[_Union[StepCost, _Mapping]]] = ..., scheduler: _Optional[_Union[SchedulerStats, _Mapping]] = ..., max_reference_seconds: _Optional[float] = ..., decode_step: _Optional[str] = ...) -> None: ...

class StepRecord(_message.Message):
    __slots__ = ("end_time_unix_seconds", "rows", "seconds")
    END_TIME_UNIX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    end_time_unix_seconds: float
    rows: int
    seconds: float
    def __init__(self, end_time_unix_seconds: _Optional[float] = ..., rows: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...

class StepCost(_message.Message):
    __slots__ = ("rows", "seconds", "samples")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    rows: int
    seconds: float
    samples: int
    def __init__(self, rows: _Optional[int] = ..., seconds: _Optional[float] = ..., samples: _Optional[int] = ...) -> None: ...

class SchedulerStats(_message.Message):
    __slots__ = ("rows_admitted", "held_back", "streams_viable", "streams_stalled", "refused_caller_cap", "prefill_seconds", "finish_seconds", "audio_per_step_seconds")
    ROWS_ADMITTED_FIELD_NUMBER: _ClassVar[int]
    HELD_BACK_FIELD_NUMBER: _ClassVar[int]
    STREAMS_VIABLE_FIELD_NUMBER: _ClassVar[int]
    STREAMS_STALLED_FIELD_NUMBER: _ClassVar[int]
    REFUSED_CALLER_CAP_FIELD_NUMBER: _ClassVar[int]
    PREFILL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    FINISH_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AUDIO_PER_STEP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    rows_admitted: int
    held_back: int
    streams_viable: int
    streams_stalled: int
    refused_caller_cap: int
    prefill_seconds: float
    finish_seconds: float
    audio_per_step_seconds: float
    def __init__(self, rows_admitted: _Optional[int] = ..., held_back: _Optional[int] = ..., streams_viable: _Optional[int] = ..., streams_stalled: _Optional[int] = ..., refused_caller_cap: _Optional[int] = ..., prefill_seconds: _Optional[float] = ..., finish_seconds: _Optional[float] = ..., audio_per_step_seconds: _Optional[float] = ...) -> None: ...

class BatchRecord(_message.Message):
    __slots__ = ("end_time_unix_seconds", "size", "compute_seconds")
    END_TIME_UNIX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    end_time_unix_seconds: float
    size: int
    compute_seconds: float
    def __init__(self, end_time_unix_seconds: _Optional[float] = ..., size: _Optional[int] = ..., compute_seconds: _Optional[float] = ...) -> None: ...

class RequestRecord(_message.Message):
    __slots__ = ("end_time_unix_seconds", "total_seconds", "queue_wait_seconds", "streamed", "first_audio_seconds")
    END_TIME_UNIX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_WAIT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STREAMED_FIELD_NUMBER: _ClassVar[int]
    FIRST_AUDIO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    end_time_unix_seconds: float
    total_seconds: float
    queue_wait_seconds: float
    streamed: bool
    first_audio_seconds: float
    def __init__(self, end_time_unix_seconds: _Optional[float] = ..., total_seconds: _Optional[float] = ..., queue_wait_seconds: _Optional[float] = ..., streamed: _Optional[bool] = ..., first_audio_seconds: _Optional[float] = ...) -> None: ...

class CreateSpeechRequest(_message.Message):
    __slots__ = ("model", "input", "voice", "response_format", "speed", "stream_format", "instructions")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    STREAM_FORMAT_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    model: str
    input: str
    voice: str
    response_format: str
    speed: float
    stream_format: str
    instructions: str
    def __init__(self, model: _Optional[str] = ..., input: _Optional[str] = ..., voice: _Optional[str] = ..., response_format: _Optional[str] = ..., speed: _Optional[float] = ..., stream_format: _Optional[str] = ..., instructions: _Optional[str] = ...) -> None: ...
