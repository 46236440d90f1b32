"""The inputs of the synthesis form, built from what the server says it supports: sound format
and sample rate, the engine's parameters with their ranges, and voice cloning."""

from __future__ import annotations

import asyncio
import io
import math
import mimetypes

import soundfile as sf
from google.protobuf.descriptor import FieldDescriptor
from nicegui import events, ui

from voxbatch import Encoding, Reference
from voxbatch.tts.v1 import tts_pb2 as pb

from ..audio_files import LABELS, STREAMABLE, rate_choices
from ..backend import Problem, ServerSnapshot
from ..i18n import N_, _
from ..store import AudioStore

# What people call each parameter; the server's description is shown under it.
# What the engines say about their parameters (GetServerInfo), so that it is shown translated.
ENGINE_DESCRIPTIONS = (
    N_("Classifier-free guidance: higher follows the text and prompt more closely."),
    N_("Flow-matching solver steps per 160 ms patch; fewer is faster."),
    N_("Scales the sampling noise; 0 is deterministic."),
    N_("Random seed; unset picks one per request."),
    N_("Speaking rate; 1.0 is the voice's natural pace."),
    N_("Scales the voice's sampling noise; 0 is fully deterministic, 1 the voice's default."),
)
PARAMETER_LABELS = {
    "speaking_rate": N_("Speaking rate"),
    "temperature": N_("Variation (temperature)"),
    "cfg_value": N_("Guidance (cfg)"),
    "inference_steps": N_("Quality steps"),
    "seed": N_("Seed"),
}
_INTEGER_TYPES = {
    FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64,
}
_FIELDS = pb.SynthesisParameters.DESCRIPTOR.fields_by_name


def nice_step(minimum: float, maximum: float, integer: bool) -> float:
    """About a hundred steps across the range, rounded to 1, 2 or 5 times a power of ten."""
    span = (maximum - minimum) / 100 if maximum > minimum else 1.0
    base = 10 ** math.floor(math.log10(span)) if span > 0 else 1.0
    step = next(m * base for m in (1, 2, 5, 10) if m * base >= span)
    return max(1, round(step)) if integer else step


def _shown(value: float, integer: bool) -> str:
    return f"{int(value)}" if integer else f"{value:.2f}".rstrip("0").rstrip(".")


class SoundSettings:
    """Format, sample rate, and whether to play while the audio is being made."""

    def __init__(self, snapshot: ServerSnapshot) -> None:
        info = snapshot.info
        self._native, self._min, self._max = info.native_sample_rate_hz, info.min_sample_rate_hz, info.max_sample_rate_hz
        formats = {int(e): _(LABELS[e]) for e in snapshot.encodings}
        with ui.grid().classes("w-full grid-cols-1 sm:grid-cols-2 gap-x-4 gap-y-1"):
            self.format = ui.select(formats, value=int(Encoding.WAV) if int(Encoding.WAV) in formats else next(iter(formats)),
                                    label=_("Format"), on_change=self._format_changed).mark("format")
            self.rate = ui.select(self._rates(), value=0, label=_("Sample rate")).mark("sample-rate")
        self.stream = ui.switch(_("Start playing after the first sentence"), value=True).mark("stream")
        self.stream_note = ui.label().classes("text-caption text-grey-7")
        self._format_changed()

    @property
    def encoding(self) -> Encoding:
        return Encoding(self.format.value)

    @property
    def sample_rate(self) -> int:
        return int(self.rate.value or 0)

    @property
    def streaming(self) -> bool:
        return bool(self.stream.value) and self.encoding in STREAMABLE

    def _rates(self) -> dict[int, str]:
        return rate_choices(Encoding(self.format.value), self._native, self._min, self._max)

    def _format_changed(self) -> None:
        choices = self._rates()
        self.rate.set_options(choices, value=self.rate.value if self.rate.value in choices else 0)
        streamable = self.encoding in STREAMABLE
        self.stream.set_enabled(streamable)
        self.stream_note.set_text(
            _("Audio starts after the first sentence; the whole file comes at the end.")
            if streamable else _("{format} can't be played while it is made; it comes at once when ready.",
                                 format=_(LABELS[self.encoding]))
        )


class ParameterControls:
    """A slider per engine parameter (a number box for the seed), with the server's ranges."""

    def __init__(self, snapshot: ServerSnapshot) -> None:
        # On/off parameters (retry_badcase) keep the engine's own rule; sliders are for ranges.
        self.specs = [
            spec for spec in snapshot.info.parameters
            if spec.name in _FIELDS and _FIELDS[spec.name].cpp_type != FieldDescriptor.CPPTYPE_BOOL
        ]
        self._sliders: dict[str, ui.slider] = {}
        self._seed: ui.number | None = None
        with ui.grid().classes("w-full grid-cols-1 sm:grid-cols-2 gap-x-6 gap-y-3"):
            for spec in self.specs:
                integer = _FIELDS[spec.name].cpp_type in _INTEGER_TYPES
                label = _(PARAMETER_LABELS.get(spec.name, spec.name.replace("_", " ").capitalize()))
                with ui.column().classes("w-full gap-0"):
                    if spec.name == "seed":
                        self._seed = ui.number(
                            label=label, placeholder=_("random"), min=spec.minimum, max=spec.maximum,
                            precision=0, format="%.0f",
                        ).classes("w-full").mark("param-seed")
                    else:
                        with ui.row().classes("w-full justify-between items-center no-wrap"):
                            ui.label(label).classes("font-medium")
                            shown = ui.label().classes("text-grey-8").mark(f"param-{spec.name}-value")
                        slider = ui.slider(
                            min=spec.minimum, max=spec.maximum, value=spec.default_value,
                            step=nice_step(spec.minimum, spec.maximum, integer),
                        ).props("label").mark(f"param-{spec.name}")
                        shown.bind_text_from(
                            slider, "value",
                            lambda v, d=spec.default_value, i=integer, default=_("(default)"):
                                _shown(v, i) + (" " + default if v == d else ""),
                        )
                        self._sliders[spec.name] = slider
                    if spec.description:
                        ui.label(_(spec.description)).classes("text-caption text-grey-7")

    def values(self) -> dict[str, float | int]:
        """Only what differs from the engine's defaults; unset parameters take the defaults."""
        chosen: dict[str, float | int] = {}
        for spec in self.specs:
            integer = _FIELDS[spec.name].cpp_type in _INTEGER_TYPES
            if spec.name == "seed":
                value = self._seed.value if self._seed is not None else None
                if value is None or value == "":
                    continue
            else:
                value = self._sliders[spec.name].value
                if value == spec.default_value:
                    continue
            value = min(max(float(value), spec.minimum), spec.maximum)
            chosen[spec.name] = int(round(value)) if integer else value
        return chosen

    def reset(self) -> None:
        for spec in self.specs:
            if spec.name in self._sliders:
                self._sliders[spec.name].set_value(spec.default_value)
        if self._seed is not None:
            self._seed.set_value(None)


class CloningSection:
    """Upload a reference clip, listen to it, type its transcript (optional where the engine
    clones from a clip alone)."""

    def __init__(self, store: AudioStore, max_bytes: int, transcript_optional: bool = False, max_seconds: float = 0.0) -> None:
        self._store = store
        self._max_seconds = max_seconds  # the server's limit (0: not known, an older server)
        self.transcript_optional = transcript_optional
        self.clip: bytes | None = None
        self.clip_name = ""
        ui.label(
            _("Upload a short, clean recording of the voice to copy (a few seconds of speech). Typing what it "
              "says is optional: without the words the voice is copied from the sound alone; with them the speech "
              "continues the recording.")
            if transcript_optional else
            _("Upload a short, clean recording of the voice to copy (a few seconds of speech), "
              "then type exactly what it says.")
        ).classes("text-body2 text-grey-8")
        self.upload = ui.upload(
            label=_("Reference clip: tap + to choose a WAV, FLAC, Ogg or MP3 file"), auto_upload=True, max_files=1,
            max_file_size=max_bytes, on_upload=self._uploaded, on_rejected=self._rejected,
        ).props('accept="audio/*,.wav,.flac,.ogg,.opus,.mp3" flat bordered').classes("w-full").mark("reference-upload")
        self.refusal = ui.label().classes("text-caption text-negative").mark("reference-refused")
        self.preview = ui.column().classes("w-full gap-1")
        self.preview.set_visibility(False)
        with self.preview:
            self.summary = ui.label().classes("text-body2").mark("reference-summary")
            self.warning = ui.label().classes("text-caption text-negative").mark("reference-warning")
            with ui.row().classes("w-full items-center no-wrap gap-2"):
                self.player = ui.audio("").classes("w-full").mark("reference-audio")
                ui.button(icon="delete", on_click=self.clear).props("flat round").tooltip(_("Remove the clip")).mark("reference-remove")
        self.transcript = ui.textarea(
            label=_("What the clip says, word for word (optional)") if transcript_optional
            else _("What the clip says, word for word"),
        ).props("outlined autogrow").classes("w-full").mark("reference-transcript")
        self._max_mb = max_bytes / (1 << 20)

    async def _uploaded(self, event: events.UploadEventArguments) -> None:
        data = await event.file.read()
        name = event.file.name or "reference"
        media_type = event.file.content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        await self.set_clip(data, name, media_type)

    async def set_clip(self, data: bytes, name: str, media_type: str) -> None:
        """Show a clip (uploaded, or recorded in the browser) for listening, and keep it."""
        self.clip, self.clip_name = data, name  # at once: Synthesize may be pressed while it is examined
        seconds, description = await asyncio.to_thread(_describe_clip, data)
        if self._max_seconds and seconds > self._max_seconds:
            # Refused now, not at Synthesize after the text is typed: the server would refuse it.
            self.clip, self.clip_name = None, ""
            message = _("{name} is {seconds} s long; the server takes clips of at most {limit} s. "
                        "Trim it to a few seconds of clear speech and try again.",
                        name=name, seconds=f"{seconds:.1f}", limit=f"{self._max_seconds:.0f}")
            self.refusal.set_text(message)
            ui.notify(message, type="warning")
            self.upload.reset()
            return
        self.refusal.set_text("")
        self.player.set_source(AudioStore.url(self._store.put(data, media_type, name)))
        self.summary.set_text(f"{name}: {description or _('{count} bytes', count=f'{len(data):,}')}")
        self.warning.set_text("" if description else
                              _("This does not look like a sound file the server can read; it will probably be refused."))
        self.preview.set_visibility(True)
        self.upload.reset()
        self.upload.set_visibility(False)  # one clip at a time: remove it to choose another

    def _rejected(self) -> None:
        ui.notify(_("That file can't be used: upload one audio file of at most {size} MiB.", size=f"{self._max_mb:.0f}"),
                  type="warning")

    def clear(self) -> None:
        self.clip, self.clip_name = None, ""
        self.preview.set_visibility(False)
        self.player.set_source("")
        self.upload.set_visibility(True)

    def reference(self) -> Reference | None:
        if self.clip is None:
            return None
        return Reference(self.clip, (self.transcript.value or "").strip())

    def problem(self) -> Problem | None:
        if self.clip is not None and not self.transcript_optional and not (self.transcript.value or "").strip():
            return Problem(_("The reference clip needs its words"),
                           _("Type what is said in the clip, word for word, or remove the clip."), "reference")
        return None


def _describe_clip(data: bytes) -> tuple[float, str]:
    """(seconds, '3.2 s, 16,000 Hz') for a readable audio file, (0, '') otherwise."""
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return 0.0, ""
    seconds = info.frames / info.samplerate if info.samplerate else 0
    return seconds, f"{seconds:.1f} s, {info.samplerate:,} Hz"
