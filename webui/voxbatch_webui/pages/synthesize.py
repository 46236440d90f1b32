"""The synthesis page: text, voice, settings, Synthesize, the result and this session's history."""

from __future__ import annotations

import asyncio
import json
import re
import time
from contextlib import aclosing

from nicegui import app, ui

from voxbatch import Audio, Chunk, Encoding, join_chunks

from ..audio_files import EXTENSIONS, LABELS, MIME_TYPES, StreamDecoder, downloadable, pcm_to_wav
from ..backend import Problem, ServerSnapshot, SynthesisOptions, explain
from ..context import WebUI
from ..i18n import _, plural
from ..layout import connecting, frame, problem_banner, section
from ..store import AudioStore, HistoryEntry
from .form import CloningSection, ParameterControls, SoundSettings
from .results import HistoryView, figures_of, figures_of_stream, show_result


def synthesis_page(webui: WebUI) -> None:
    with frame("Speak", "/", webui.settings.title):
        SynthesisPage(webui, app.storage.browser["id"])


class SynthesisPage:
    def __init__(self, webui: WebUI, session: str) -> None:
        self.webui = webui
        self.session = session
        self.snapshot: ServerSnapshot | None = None
        self.busy = False
        self.stop_requested = False
        self._stream_task: asyncio.Task | None = None
        self._waiting_for: Problem | None = None
        self.status = ui.column().classes("w-full")
        self.form = ui.column().classes("w-full gap-4")
        with self.status:
            connecting(webui.settings.server)
        self.retry = ui.timer(webui.settings.refresh_s, self.load, immediate=True)

    # -- loading ---------------------------------------------------------------------------------

    async def load(self) -> None:
        """Fetch the server's voices and parameters; until it answers, say so and keep trying."""
        if self.snapshot is not None:
            return
        try:
            snapshot = await self.webui.backend.snapshot()
        except Exception as error:  # noqa: BLE001 - the page shows it in words, and keeps trying
            problem = explain(error, self.webui.settings.server)
            if problem != self._waiting_for:
                self._waiting_for = problem
                self.status.clear()
                with self.status:
                    problem_banner(problem, retrying=True)
                    ui.button(_("Try now"), icon="refresh", on_click=self.try_now).props("flat no-caps").mark("try-now")
            return
        if self.snapshot is not None:  # a click on "Try now" and the timer raced
            return
        self.snapshot = snapshot
        self.retry.deactivate()
        self.status.clear()
        with self.form:
            self.build(snapshot)

    async def try_now(self) -> None:
        await self.load()
        if self.snapshot is None:
            ui.notify(_("Still no answer from the speech server."), type="warning")

    # -- the form --------------------------------------------------------------------------------

    def build(self, snapshot: ServerSnapshot) -> None:
        info = snapshot.info
        self.limit = info.max_text_chars
        with section(_("Text"), "notes"):
            self.text = ui.textarea(
                placeholder=_("Type or paste what should be spoken. Long texts play as soon as the first sentence is ready."),
                on_change=self.text_changed,
            ).props("outlined autogrow input-style='min-height: 7rem'").classes("w-full").mark("text")
            with ui.row().classes("w-full items-center justify-between gap-2"):
                self.count = ui.label().classes("text-caption").mark("count")
                self.count_problem = ui.label().classes("text-caption text-negative").mark("count-problem")
            self.normalize = ui.switch(_("Read numbers, dates, times and units as words"), value=info.normalize_default) \
                .mark("normalize").tooltip(_("Spells out $5, 10:30 or 3 km before the voice reads the text "
                                             "(English and Chinese)."))
        with section(_("Voice"), "record_voice_over"):
            voices = {v.name: f"{v.name} ({_languages_of(v)})" + (f": {v.description}" if v.description else "")
                      for v in snapshot.voices.voices}
            default = snapshot.voices.default_voice if snapshot.voices.default_voice in voices else next(iter(voices), None)
            self.voice = ui.select(voices, value=default, label=_("Voice")).classes("w-full").mark("voice")
            self.instructions = None
            if info.supports_instructions:
                self.instructions = ui.textarea(
                    label=_("Describe the voice (optional)"),
                    placeholder=_("For example: a warm, slow, elderly voice, slightly amused"),
                ).props("outlined autogrow").classes("w-full").mark("instructions")
                ui.label(
                    _("Who speaks and how: age, tone, mood, pace. With a recording below, it steers the copied voice's style.")
                ).classes("text-caption text-grey-7")
            self.cloning = None
            if info.supports_cloning:
                with ui.expansion(_("Clone a voice from a recording"), icon="mic").classes("w-full").mark("cloning"):
                    self.cloning = CloningSection(
                        self.webui.store, self.webui.settings.max_reference_mb << 20,
                        transcript_optional=info.supports_isolated_reference,
                        max_seconds=info.max_reference_seconds,
                    )
        with section(_("Sound"), "tune"):
            self.sound = SoundSettings(snapshot)
            if info.parameters:
                ui.separator()
                self.parameters = ParameterControls(snapshot)
                ui.button(_("Back to defaults"), icon="restart_alt", on_click=self.parameters.reset) \
                    .props("flat no-caps").mark("reset-parameters")
            else:
                self.parameters = None
        with ui.row().classes("w-full items-center gap-3"):
            self.button = ui.button(_("Synthesize"), icon="play_arrow").props("size=lg no-caps").mark("synthesize")
            # Both handlers: the browser unlocks its audio output on the click itself (so the
            # stream may play), then the server runs the request.
            self.button.on("click", self.synthesize, js_handler="(e) => { window.voxbatchLive && voxbatchLive.unlock(); emit(e); }")
            self.stop = ui.button(_("Stop"), icon="stop", on_click=self.request_stop).props("flat no-caps").mark("stop")
            self.stop.set_visibility(False)
        self.progress_box = ui.column().classes("w-full gap-1")
        self.progress_box.set_visibility(False)
        with self.progress_box:
            self.progress_label = ui.label().classes("text-body2").mark("progress-label")
            self.progress = ui.linear_progress(value=0, show_value=False, size="10px").mark("progress")
        self.problem_box = ui.column().classes("w-full")
        self.result_box = ui.column().classes("w-full")
        with section(_("History"), "history"):
            self.history = HistoryView(self.webui.history, self.session)
        self.text_changed()

    def text_changed(self) -> None:
        n = len(self.text.value or "")
        self.count.set_text(_("{count} / {limit} characters", count=f"{n:,}", limit=f"{self.limit:,}"))
        over = n - self.limit
        self.count.classes(replace="text-caption " + ("text-negative font-medium" if over > 0 else "text-grey-7"))
        self.count_problem.set_text(
            plural(over, "Too long by {count} character: shorten the text or split it into parts.",
                   "Too long by {count} characters: shorten the text or split it into parts.", count=f"{over:,}")
            if over > 0 else ""
        )
        self._update_button()

    def _update_button(self) -> None:
        text = (self.text.value or "").strip()
        self.button.set_enabled(not self.busy and bool(text) and len(self.text.value) <= self.limit)

    def options(self) -> SynthesisOptions:
        return SynthesisOptions(
            text=self.text.value,
            voice=self.voice.value or "",
            normalize=bool(self.normalize.value),
            encoding=self.sound.encoding,
            sample_rate=self.sound.sample_rate,
            parameters=self.parameters.values() if self.parameters else {},
            reference=self.cloning.reference() if self.cloning else None,
            instructions=(self.instructions.value or "").strip() if self.instructions else "",
        )

    # -- running a request -----------------------------------------------------------------------

    async def synthesize(self) -> None:
        if self.busy:  # a second click while one runs does nothing
            return
        self.problem_box.clear()
        self.result_box.clear()  # the last result stays in the history
        problem = self.cloning.problem() if self.cloning else None
        if problem is not None:
            self.show_problem(problem)
            return
        options = self.options()
        self.busy, self.stop_requested = True, False
        self.button.props("loading")
        self._update_button()
        self.progress_box.set_visibility(True)
        try:
            if self.sound.streaming:
                await self.run_stream(options)
            else:
                await self.run_unary(options)
        except Exception as error:  # noqa: BLE001 - the person gets words, the log gets the rest
            self.show_problem(explain(error, self.webui.settings.server))
        finally:
            self.busy = False
            self.button.props(remove="loading")
            self.stop.set_visibility(False)
            self.progress_box.set_visibility(False)
            self._update_button()

    async def run_unary(self, options: SynthesisOptions) -> None:
        self.progress_label.set_text(_("Making the audio…"))
        self.progress.props("indeterminate")
        audio = await self.webui.backend.synthesize(options)
        self.progress.props(remove="indeterminate")
        self.finish(options, audio, figures_of(audio), streamed=False)

    async def run_stream(self, options: SynthesisOptions) -> None:
        """Play each sentence as it arrives (in the browser's live player), keep the whole file."""
        client = self.button.client
        client.run_javascript("window.voxbatchLive && voxbatchLive.stop()")
        self.progress_label.set_text(_("Making the first sentence…"))
        self.progress.set_value(0)
        self.stop.set_visibility(True)
        started = time.perf_counter()
        chunks: list[Chunk] = []
        first_audio_s = 0.0

        async def consume() -> None:
            nonlocal first_audio_s
            decoder: StreamDecoder | None = None
            async with aclosing(self.webui.backend.stream(options)) as stream:
                async for chunk in stream:
                    if decoder is None:
                        first_audio_s = time.perf_counter() - started
                        decoder = StreamDecoder(chunk.encoding, chunk.sample_rate)
                    chunks.append(chunk)
                    piece = await asyncio.to_thread(decoder.feed, chunk.data)
                    if piece:
                        url = AudioStore.url(self.webui.store.put(piece, "audio/wav", "piece.wav"))
                        client.run_javascript(f"window.voxbatchLive && voxbatchLive.enqueue({json.dumps(url)})")
                    done, total = chunk.sentence_index + 1, max(1, chunk.sentence_count)
                    self.progress.set_value(done / total)
                    self.progress_label.set_text(
                        _("Sentence {done} of {total} ready, playing while the rest is made", done=done, total=total)
                        if done < total else _("All {total} sentences ready", total=total))

        self._stream_task = asyncio.create_task(consume())
        try:
            await self._stream_task
        except asyncio.CancelledError:
            if not self.stop_requested:
                raise
            client.run_javascript("window.voxbatchLive && voxbatchLive.stop()")
            ui.notify(_("Stopped."))
            return
        finally:
            self._stream_task = None
        audio = join_chunks(chunks)
        self.finish(options, audio, figures_of_stream(chunks, first_audio_s), streamed=True)

    def request_stop(self) -> None:
        if self._stream_task is not None:
            self.stop_requested = True
            self._stream_task.cancel()

    def finish(self, options: SynthesisOptions, audio: Audio, figures: dict[str, str], *, streamed: bool) -> None:
        """Keep the file, show it as the result and add it to the history."""
        store = self.webui.store
        filename = _filename(options, audio.sample_rate)
        file_data = downloadable(audio.data, audio.encoding)
        if audio.encoding is Encoding.PCM_S16LE:  # browsers can't play headerless PCM: give it a header
            download_key = store.put(file_data, MIME_TYPES[audio.encoding], filename)
            play_key = store.put(pcm_to_wav(file_data, audio.sample_rate), "audio/wav", filename + ".wav")
        else:
            download_key = play_key = store.put(file_data, MIME_TYPES[audio.encoding], filename)
        voice = options.voice + (" " + _("(cloned)") if options.reference is not None else "")
        entry = HistoryEntry(
            text=options.text, voice=voice, format_label=_(LABELS[audio.encoding]), duration_s=audio.duration_seconds,
            play_key=play_key, download_key=download_key, filename=filename, figures=figures, streamed=streamed,
        )
        self.webui.history.add(self.session, entry)
        self.result_box.clear()
        with self.result_box:
            show_result(entry, audio.length_capped)
        self.history.refresh()

    def show_problem(self, problem: Problem) -> None:
        self.problem_box.clear()
        with self.problem_box:
            problem_banner(problem)


def _filename(options: SynthesisOptions, rate: int) -> str:
    words = re.findall(r"[A-Za-z0-9]+", options.text)[:5]
    stem = "-".join(words).lower()[:40] or "speech"
    suffix = f"-{rate}hz" if options.encoding is Encoding.PCM_S16LE else ""
    return f"{stem}{suffix}.{EXTENSIONS[options.encoding]}"


def _languages_of(voice) -> str:
    """en-US for a voice of one language; "zh, en" for one that speaks several."""
    if voice.language_code and voice.language_code != "multilingual":
        return voice.language_code
    return ", ".join(voice.languages) or voice.language_code
