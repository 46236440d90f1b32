"""The synthesis pipeline: plan a request (planning.py: checks, voice, reference, work items),
run its work items through the cache and the batcher, and encode the audio. It speaks domain
types only; grpc_api/ adapts it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .audio.encoding import StreamEncoder, check_streamable, encode
from .audio.resample import resample
from .batching import Batcher
from .batching.batcher import Admission
from .batching.playback import PlaybackClock
from .batching.session import Ticket
from .cache import Cache, cache_key
from .domain import EngineAudio, SpeechTask, SynthesisRequest, deadline_passed
from .engines import Engine
from .results import RequestRecord, RequestTimings, StreamPiece, SynthesisResult
from .logs import request_context
from .planning import Plan, Planner
from .settings import Settings
from .voices import VoiceLibrary

log = logging.getLogger(__name__)


@dataclass
class _Job:
    """One sentence in flight: served from the cache, or waiting on a batcher ticket."""

    key: str
    cacheable: bool = False  # the request determines its audio, so it may be cached
    cached: EngineAudio | None = None
    ticket: Ticket | None = None
    result: EngineAudio | None = field(default=None, repr=False)


class Synthesizer:
    def __init__(
        self, engine: Engine, batcher: Batcher, settings: Settings, cache: Cache | None = None,
        voices: VoiceLibrary | None = None,
    ) -> None:
        self.engine = engine
        self.voices = voices  # the saved voices (the servicer's voice RPCs use them too)
        self.planner = Planner(engine, settings, voices)
        self.batcher = batcher
        self.settings = settings
        self.cache = cache
        self.recent: deque[RequestRecord] = deque(maxlen=1000)
        self.streams: Counter[str] = Counter()  # finished streams: "viable" (no stall) or "stalled"
        self.on_request: Callable[[RequestRecord], None] | None = None  # metrics hook, per finished request

    # -- public API -------------------------------------------------------------------------

    async def synthesize(self, request: SynthesisRequest, deadline: float | None = None) -> SynthesisResult:
        # Admitted on arrival: a request that arrived before a shutdown began is finished.
        with self.batcher.admission() as admission:
            return await self._synthesize(request, deadline, admission)

    async def stream(self, request: SynthesisRequest, deadline: float | None = None) -> AsyncIterator[StreamPiece]:
        with self.batcher.admission() as admission:
            async for piece in self._stream(request, deadline, admission):
                yield piece

    async def _synthesize(self, request: SynthesisRequest, deadline: float | None, admission: Admission) -> SynthesisResult:
        plan = await self.planner.plan(request, stream=False)
        with request_context(plan.request_id):
            jobs = await self._start(plan, deadline, admission)
            audios: list[EngineAudio] = []
            try:
                for job in jobs:
                    audios.append(await self._finish(job))
            except asyncio.CancelledError:
                _log_left(plan, len(audios), len(jobs), deadline)
                raise
            finally:
                _cancel(jobs)
            samples = np.concatenate([a.samples for a in audios])
            native = self.engine.info.native_sample_rate
            data = await asyncio.to_thread(_encode_whole, samples, native, plan.rate, request.encoding)
            timings = _timings(jobs, plan)
            self._finished(RequestRecord(
                time.time(), timings.total_s, timings.queue_wait_s, False, timings.total_s, plan.request_id,
                badcase_retries=sum(a.badcase_retries for a in audios),
            ))
            log.info(
                "synthesized %d work items, %.2f s of audio, queue %.3fs, batch %d, compute %.3fs, total %.3fs%s",
                len(jobs), len(samples) / native, timings.queue_wait_s, timings.batch_size,
                timings.compute_s, timings.total_s, " (cache)" if timings.cache_hit else "",
                extra=_log_fields(plan, jobs, timings),
            )
            return SynthesisResult(
                audio=data,
                encoding=request.encoding,
                sample_rate=plan.rate,
                duration_s=len(samples) / native,
                request_id=plan.request_id,
                timings=timings,
                length_capped=any(a.length_capped for a in audios),
                badcase_retries=sum(a.badcase_retries for a in audios),
            )

    async def _stream(self, request: SynthesisRequest, deadline: float | None, admission: Admission) -> AsyncIterator[StreamPiece]:
        check_streamable(request.encoding)
        plan = await self.planner.plan(request, stream=True)
        with request_context(plan.request_id):
            jobs = await self._start(plan, deadline, admission)
            index = 0
            encoder = StreamEncoder(request.encoding, plan.rate)
            native = self.engine.info.native_sample_rate
            offset = 0.0
            sequence = 0
            first_audio_s = 0.0
            playback = PlaybackClock()
            try:
                for index, job in enumerate(jobs):
                    sentence = plan.sentences[index]
                    async for piece, capped, sentence_done in self._pieces(job):
                        data = await asyncio.to_thread(_encode_piece, encoder, piece, native, plan.rate)
                        duration = len(piece) / native
                        last = sentence_done and index == len(jobs) - 1
                        if last:
                            data += encoder.finish()
                        if duration > 0:
                            playback.deliver(time.monotonic(), duration)
                        yield StreamPiece(
                            audio=data, sequence=sequence, sentence=sentence, sentence_count=len(jobs),
                            audio_offset_s=offset, duration_s=duration, final=last,
                            encoding=request.encoding, sample_rate=plan.rate, request_id=plan.request_id,
                            timings=_played(_timings([job], plan), playback), length_capped=capped,
                        )
                        if sequence == 0:
                            first_audio_s = time.perf_counter() - plan.started
                        offset += duration
                        sequence += 1
                total = _played(_timings(jobs, plan), playback)
                self._finished(RequestRecord(
                    time.time(), total.total_s, total.queue_wait_s, True, first_audio_s, plan.request_id, total.stalls,
                    total.final_slack_s,
                ))
                log.info(
                    "streamed %d work items in %d chunks, %.2f s of audio, first audio after %.3fs, total %.3fs; "
                    "%d stalls (%.3fs), final slack %.3fs",
                    len(jobs), sequence, offset, first_audio_s, total.total_s, total.stalls, total.stalled_s,
                    total.final_slack_s,
                    extra={
                        **_log_fields(plan, jobs, total), "first_audio_s": round(first_audio_s, 4), "stalls": total.stalls,
                        "stalled_s": round(total.stalled_s, 4), "final_slack_s": round(total.final_slack_s, 4),
                    },
                )
            except (asyncio.CancelledError, GeneratorExit):
                _log_left(plan, index, len(jobs), deadline)
                raise
            finally:
                _cancel(jobs)

    # -- steps ------------------------------------------------------------------------------

    async def _start(self, plan: Plan, deadline: float | None, admission: Admission) -> list[_Job]:
        info = self.engine.info
        defaults = {spec.name: spec.default for spec in info.parameters}
        jobs = [_Job(key=cache_key(info.name, info.model, task, defaults)) for task in plan.tasks]
        # Only audio the request determines is cached (a seed, or no sampling noise); a cached
        # copy of a random draw would hand every caller the same draw.
        cache = self.cache if plan.tasks and self.engine.deterministic(plan.tasks[0]) else None
        for job in jobs:
            job.cacheable = cache is not None
        if cache is not None:
            for job, cached in zip(jobs, await cache.lookup([job.key for job in jobs])):
                job.cached = cached
        todo = [(job, task) for job, task in zip(jobs, plan.tasks) if job.cached is None]
        if todo:
            prepared = await asyncio.to_thread(_prepare_all, self.engine, [task for _, task in todo])
            tickets = self.batcher.submit_many(
                prepared, int(plan.request.priority), deadline, request_id=plan.request_id, admission=admission,
                stream=plan.tasks[0].stream, caller=plan.request.caller,
            )
            for (job, _), ticket in zip(todo, tickets):
                job.ticket = ticket
        log.info(
            "accepted: %d chars, %d work items (%d cached), priority %s, caller %s",
            len(plan.request.text), len(jobs), len(jobs) - len(todo), plan.request.priority.name.lower(),
            plan.request.caller or "-", extra={"caller": plan.request.caller},
        )
        if self.settings.log_text_chars:  # opt-in only: texts may be private
            cut = plan.request.text[: self.settings.log_text_chars]
            log.info("text: %r%s", cut, "..." if len(plan.request.text) > len(cut) else "")
        return jobs

    async def _finish(self, job: _Job) -> EngineAudio:
        if job.result is None:
            if job.cached is not None:
                job.result = job.cached
            else:
                job.result = await job.ticket.result()
                if self.cache is not None and job.cacheable:
                    await self.cache.store(job.key, job.result)
        return job.result

    async def _pieces(self, job: _Job) -> AsyncIterator[tuple[np.ndarray, bool, bool]]:
        """A sentence's audio as it becomes available: an engine's partial pieces first (when it
        streams), then whatever the final result has beyond them, marked as the sentence's end.
        Yields (samples, length_capped, sentence_done)."""
        sent = 0
        if job.ticket is not None and job.cached is None:
            result_task = asyncio.ensure_future(self._finish(job))
            partial_task: asyncio.Future | None = None
            try:
                while not result_task.done():
                    partial_task = partial_task or asyncio.ensure_future(job.ticket.partials.get())
                    await asyncio.wait({result_task, partial_task}, return_when=asyncio.FIRST_COMPLETED)
                    if partial_task.done():
                        piece: EngineAudio = partial_task.result()
                        partial_task = None
                        sent += len(piece.samples)
                        yield piece.samples, piece.length_capped, False
            finally:
                if partial_task is not None:
                    partial_task.cancel()
            while not job.ticket.partials.empty():
                piece = job.ticket.partials.get_nowait()
                sent += len(piece.samples)
                yield piece.samples, piece.length_capped, False
        audio = await self._finish(job)
        yield audio.samples[sent:], audio.length_capped, True

    def _finished(self, record: RequestRecord) -> None:
        self.recent.append(record)
        if record.streamed:
            self.streams["stalled" if record.stalls else "viable"] += 1
        if self.on_request is not None:
            self.on_request(record)


def _log_fields(plan: Plan, jobs: Sequence[_Job], timings: RequestTimings) -> dict:
    """Structured fields of a finished request's log line (see logs.py)."""
    return {
        "outcome": "ok",
        "sentences": plan.sentence_count,
        "work_items": len(jobs),
        "batch_ids": list(timings.batch_ids),
        "batch_size": timings.batch_size,
        "queue_wait_s": round(timings.queue_wait_s, 4),
        "compute_s": round(timings.compute_s, 4),
        "total_s": round(timings.total_s, 4),
        "cache_hit": timings.cache_hit,
    }


def _log_left(plan: Plan, done: int, total: int, deadline: float | None) -> None:
    """The final line of a request whose caller left, or whose deadline passed, before the end."""
    expired = deadline_passed(deadline, time.monotonic())
    log.info(
        "%s after %d of %d work items, %.3fs",
        "deadline passed" if expired else "cancelled by the caller", done, total, time.perf_counter() - plan.started,
        extra={"outcome": "DEADLINE_EXCEEDED" if expired else "CANCELLED", "request_id": plan.request_id, "work_items": total,
               "total_s": round(time.perf_counter() - plan.started, 4)},
    )


def _prepare_all(engine: Engine, tasks: Sequence[SpeechTask]) -> list:
    return [engine.prepare(task) for task in tasks]


def _cancel(jobs: Sequence[_Job]) -> None:
    for job in jobs:
        if job.ticket is not None:
            job.ticket.cancel()


def _played(timings: RequestTimings, playback: PlaybackClock) -> RequestTimings:
    """A stream's timings with its listener's playback so far."""
    timings.stalls, timings.stalled_s = playback.stalls, playback.stalled_s
    # At the latest chunk with audio: a stream's closing empty piece plays nothing.
    timings.final_slack_s = playback.slack(playback.last_at) or 0.0 if playback.last_at is not None else 0.0
    return timings


def _timings(jobs: Sequence[_Job], plan: Plan) -> RequestTimings:
    run = [job.ticket.timings for job in jobs if job.ticket is not None and job.cached is None]
    compute_by_batch = {t.batch_id: t.compute_s for t in run}
    return RequestTimings(
        queue_wait_s=max((t.queue_wait_s for t in run), default=0.0),
        batch_size=max((t.batch_size for t in run), default=0),
        compute_s=sum(compute_by_batch.values()),
        total_s=time.perf_counter() - plan.started,
        cache_hit=not run,
        batch_ids=tuple(sorted(compute_by_batch)),
        prompt_encoded=plan.prompt_encode_s is not None,
        prompt_encode_s=plan.prompt_encode_s or 0.0,
    )


def _encode_whole(samples: np.ndarray, native: int, rate: int, encoding) -> bytes:
    return encode(resample(samples, native, rate), rate, encoding)


def _encode_piece(encoder: StreamEncoder, samples: np.ndarray, native: int, rate: int) -> bytes:
    return encoder.write(resample(samples, native, rate))
