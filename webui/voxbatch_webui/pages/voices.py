"""The voices page: every voice the server has, grouped (saved, built-in) with language badges;
saved voices can be heard and deleted, and new ones made from an uploaded clip or a recording
made in the browser."""

from __future__ import annotations

import re
from datetime import datetime

from nicegui import ui

from voxbatch.tts.v1 import tts_pb2 as pb

from ..backend import Problem, ServerSnapshot, explain
from ..context import WebUI
from ..i18n import _, language_name
from ..layout import connecting, frame, problem_banner, section
from ..recorder import MAX_SECONDS, RECORDING_ROUTE
from ..store import AudioStore
from .form import CloningSection

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def voices_page(webui: WebUI) -> None:
    with frame("Voices", "/voices", webui.settings.title):
        VoicesPage(webui)


class VoicesPage:
    def __init__(self, webui: WebUI) -> None:
        self.webui = webui
        self.snapshot: ServerSnapshot | None = None
        self._waiting_for: Problem | None = None
        self.status = ui.column().classes("w-full")
        self.creator = ui.column().classes("w-full")
        self.listing = ui.column().classes("w-full gap-4")
        with self.status:
            connecting(webui.settings.server)
        self.retry = ui.timer(webui.settings.refresh_s, self.load, immediate=True)

    async def load(self) -> None:
        if self.snapshot is not None:
            return
        try:
            self.snapshot = await self.webui.backend.snapshot()
        except Exception as error:  # noqa: BLE001 - shown in words; the page keeps trying
            problem = explain(error, self.webui.settings.server)
            if problem != self._waiting_for:
                self._waiting_for = problem
                self.status.clear()
                with self.status:
                    problem_banner(problem, retrying=True)
            return
        self.retry.deactivate()
        self.status.clear()
        with self.creator:
            self._build_creator()
        self._show(self.snapshot.voices)

    # -- creating ------------------------------------------------------------------------------

    def _build_creator(self) -> None:
        info = self.snapshot.info
        with section(_("Save a voice"), "add_circle").mark("create-voice"):
            if not info.supports_cloning:
                ui.label(_("The {engine} engine cannot clone voices, so it cannot save any. Serve a VoxCPM model "
                           "to save voices.", engine=info.engine)).classes("text-body2 text-grey-8").mark("cannot-clone")
                return
            ui.label(_("Save a voice once and use it by name from every client: the server encodes the clip once "
                       "and keeps it.")).classes("text-body2 text-grey-8")
            with ui.row().classes("w-full gap-3 items-start"):
                self.name = ui.input(
                    _("Name"), placeholder="narrator-anna",
                    validation={_("Lower-case letters, digits, - _ . (at most 64)"): lambda v: not v or NAME.fullmatch(v)},
                ).props("outlined dense").classes("grow min-w-[12rem]").mark("voice-name")
                self.description = ui.input(_("Description (optional)")).props("outlined dense") \
                    .classes("grow min-w-[12rem]").mark("voice-description")
            spoken = list(dict.fromkeys(code for v in self.snapshot.voices.voices if v.kind == pb.VOICE_KIND_BUILT_IN
                                        for code in v.languages))
            self.languages = ui.select(
                {code: language_name(code) for code in spoken}, multiple=True, value=list(spoken),
                label=_("Languages the voice speaks"),
            ).props("outlined dense use-chips").classes("w-full").mark("voice-languages")
            self.languages.set_visibility(bool(spoken))
            self.clip = CloningSection(self.webui.store, self.webui.settings.max_reference_mb << 20,
                                       transcript_optional=info.supports_isolated_reference)
            with ui.row().classes("items-center gap-2"):
                self.record_button = ui.button(_("Record from the microphone"), icon="mic", on_click=self._record) \
                    .props("outline no-caps").mark("record")
                self.recording_label = ui.label().classes("text-caption text-grey-7").mark("recording-state")
            self.create_problem = ui.column().classes("w-full")
            self.save = ui.button(_("Save voice"), icon="save", on_click=self._create).props("no-caps") \
                .classes("self-end").mark("save-voice")
        self._recording_token: str | None = None
        self._record_timer = ui.timer(0.5, self._tick, active=False)

    async def _record(self) -> None:
        if self._recording_token is None:
            try:
                await ui.run_javascript("window.voxbatchRecorder.start()", timeout=30)
            except Exception as error:  # noqa: BLE001 - no microphone, or permission refused
                self.recording_label.set_text(_("The microphone could not be used ({reason}).", reason=str(error)[:80]))
                return
            self._recording_token = self.webui.recordings.expect()
            self.record_button.set_text(_("Stop recording"))
            self.record_button.props("icon=stop color=negative")
            self.recording_label.set_text(_("Recording… speak now (at most {seconds} s).", seconds=MAX_SECONDS))
            self._record_timer.activate()
            return
        await self._stop_recording()

    async def _tick(self) -> None:
        elapsed = await ui.run_javascript("window.voxbatchRecorder.elapsed()", timeout=5)
        self.recording_label.set_text(_("Recording… {seconds} s", seconds=f"{float(elapsed or 0):.0f}"))
        if float(elapsed or 0) >= MAX_SECONDS:
            await self._stop_recording()

    async def _stop_recording(self) -> None:
        token, self._recording_token = self._recording_token, None
        self._record_timer.deactivate()
        self.record_button.set_text(_("Record from the microphone"))
        self.record_button.props("icon=mic color=primary")
        url = RECORDING_ROUTE.format(token=token)
        result = await ui.run_javascript(f"window.voxbatchRecorder.stop({url!r}, {MAX_SECONDS})", timeout=60)
        data = self.webui.recordings.take(token)
        if not data or not (result or {}).get("ok"):
            self.recording_label.set_text(_("The recording did not arrive; try again."))
            return
        self.recording_label.set_text("")
        await self.clip.set_clip(data, _("recording.wav"), "audio/wav")

    async def _create(self) -> None:
        self.create_problem.clear()
        name = (self.name.value or "").strip()
        problem = None
        if not NAME.fullmatch(name):
            problem = Problem(_("The voice needs a name"),
                              _("Use lower-case letters, digits, '-', '_' and '.', such as narrator-anna."), "invalid")
        elif self.clip.reference() is None:
            problem = Problem(_("The voice needs a recording"),
                              _("Upload a clip of the voice, or record one from the microphone."), "reference")
        else:
            problem = self.clip.problem()
        if problem is None:
            self.save.props("loading")
            try:
                voice = await self.webui.backend.create_voice(
                    name, self.clip.reference(), (self.description.value or "").strip(), list(self.languages.value or []),
                )
            except Exception as error:  # noqa: BLE001 - explained in words
                problem = explain(error, self.webui.settings.server)
            finally:
                self.save.props(remove="loading")
        if problem is not None:
            with self.create_problem:
                problem_banner(problem)
            return
        ui.notify(_("Saved the voice {name}.", name=voice.name), type="positive")
        self.name.set_value("")
        self.description.set_value("")
        self.clip.clear()
        self.clip.transcript.set_value("")
        await self.refresh()

    # -- listing -------------------------------------------------------------------------------

    async def refresh(self) -> None:
        try:
            voices = await self.webui.backend.voices()
        except Exception as error:  # noqa: BLE001
            self.listing.clear()
            with self.listing:
                problem_banner(explain(error, self.webui.settings.server))
            return
        self._show(voices)

    def _show(self, voices) -> None:
        self.listing.clear()
        saved = [v for v in voices.voices if v.kind == pb.VOICE_KIND_SAVED]
        builtin = [v for v in voices.voices if v.kind != pb.VOICE_KIND_SAVED]
        with self.listing:
            with section(_("Saved voices ({count})", count=len(saved)), "bookmarks").mark("saved-voices"):
                if not saved:
                    ui.label(_("No saved voices yet.")).classes("text-grey-7").mark("no-saved-voices")
                for voice in saved:
                    self._voice_row(voice, saved=True)
            with section(_("Built-in voices ({count})", count=len(builtin)), "graphic_eq").mark("builtin-voices"):
                for voice in builtin:
                    self._voice_row(voice, saved=False, default=voice.name == voices.default_voice)

    def _voice_row(self, voice, *, saved: bool, default: bool = False) -> None:
        with ui.column().classes("w-full gap-1 q-py-xs").mark(f"voice-{voice.name}") as box:
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(voice.name).classes("text-subtitle1 font-medium").mark("voice-name-label")
                for code in voice.languages:
                    ui.badge(language_name(code), color="secondary").props("outline").mark("language-badge")
                if default:
                    ui.badge(_("default"), color="primary")
                ui.space()
                if saved:
                    ui.button(icon="play_arrow", on_click=lambda v=voice, b=box: self._listen(v, b)) \
                        .props("flat round dense").tooltip(_("Listen to the clip")).mark(f"listen-{voice.name}")
                    ui.button(icon="delete", on_click=lambda v=voice: self._confirm_delete(v)) \
                        .props("flat round dense color=negative").tooltip(_("Delete")).mark(f"delete-{voice.name}")
            details = [voice.description] if voice.description else []
            if saved:
                created = datetime.fromtimestamp(voice.create_time_unix_seconds).strftime("%Y-%m-%d %H:%M")
                details.append(_("{seconds} s clip, saved {created}", seconds=f"{voice.reference_seconds:.1f}",
                                 created=created))
            if details:
                ui.label(" · ".join(details)).classes("text-caption text-grey-7")
            if saved and voice.transcript:
                ui.label(f"“{voice.transcript}”").classes("text-body2 text-grey-8 italic")

    async def _listen(self, voice, box: ui.column) -> None:
        try:
            clip = await self.webui.backend.voice_clip(voice.name)
        except Exception as error:  # noqa: BLE001
            ui.notify(explain(error, self.webui.settings.server).title, type="negative")
            return
        media_type = _media_type(clip)
        key = self.webui.store.put(clip, media_type, f"{voice.name}.{media_type.split('/')[-1]}")
        for old in [e for e in box.default_slot.children if isinstance(e, ui.audio)]:
            old.delete()
        with box:
            ui.audio(AudioStore.url(key), autoplay=True).classes("w-full").mark(f"clip-{voice.name}")

    def _confirm_delete(self, voice) -> None:
        with ui.dialog() as dialog, ui.card():
            ui.label(_("Delete the voice {name}?", name=voice.name)).classes("text-subtitle1")
            ui.label(_("Requests already waiting with it still finish; new ones cannot use it."))\
                .classes("text-body2 text-grey-8")
            with ui.row().classes("w-full justify-end"):
                ui.button(_("Cancel"), on_click=dialog.close).props("flat no-caps")
                ui.button(_("Delete"), on_click=lambda: self._delete(voice, dialog)) \
                    .props("no-caps color=negative").mark("confirm-delete")
        dialog.open()

    async def _delete(self, voice, dialog) -> None:
        dialog.close()
        try:
            await self.webui.backend.delete_voice(voice.name)
        except Exception as error:  # noqa: BLE001
            problem = explain(error, self.webui.settings.server)
            ui.notify(f"{problem.title}: {problem.detail}", type="negative")
        else:
            ui.notify(_("Deleted the voice {name}.", name=voice.name), type="info")
        await self.refresh()


def _media_type(clip: bytes) -> str:
    """The clip's type as uploaded (WAV, FLAC, Ogg, MP3), from its first bytes."""
    if clip[:4] == b"fLaC":
        return "audio/flac"
    if clip[:4] == b"OggS":
        return "audio/ogg"
    if clip[:3] == b"ID3" or clip[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    return "audio/wav"
