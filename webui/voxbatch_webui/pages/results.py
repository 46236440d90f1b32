"""A finished result (player, download, figures) and the browser session's history of them."""

from __future__ import annotations

from collections.abc import Sequence

from nicegui import ui

from voxbatch import Audio, Chunk

from ..i18n import N_, _
from ..store import AudioStore, History, HistoryEntry

# The figures under a result, by their English names (also their test markers), shown translated.
FIGURE_HINTS = {
    N_("Duration"): N_("Length of the audio."),
    N_("Queue wait"): N_("How long the request waited on the server before the engine started on it."),
    N_("Batch size"): N_("How many sentences (from all users) the engine spoke together in one pass."),
    N_("Real-time factor"): N_("Seconds the server worked per second of audio; below 1 is faster than real time."),
    N_("First audio"): N_("Time until the first sentence could be heard."),
}


def figures_of(audio: Audio) -> dict[str, str]:
    t = audio.timings
    figures = {"Duration": f"{audio.duration_seconds:.1f} s"}
    if t is not None:
        figures["Queue wait"] = f"{t.queue_wait_seconds * 1000:.0f} ms"
        figures["Batch size"] = str(t.batch_size) if not t.cache_hit else _("cached")
        figures["Real-time factor"] = _rtf(t.total_seconds, audio.duration_seconds)
    return figures


def figures_of_stream(chunks: Sequence[Chunk], first_audio_s: float) -> dict[str, str]:
    duration = sum(c.duration_seconds for c in chunks)
    cached = all(c.timings.cache_hit for c in chunks)
    return {
        "Duration": f"{duration:.1f} s",
        "Queue wait": f"{max(c.timings.queue_wait_seconds for c in chunks) * 1000:.0f} ms",
        "Batch size": _("cached") if cached else str(max(c.timings.batch_size for c in chunks)),
        "Real-time factor": _rtf(chunks[-1].timings.total_seconds, duration),
        "First audio": f"{first_audio_s:.2f} s",
    }


def _rtf(work_s: float, duration_s: float) -> str:
    return f"{work_s / duration_s:.2f}×" if duration_s > 0 else "–"


def download_button(entry: HistoryEntry, *, label: str | None = None) -> ui.button:
    label = _("Download") if label is None else label
    url = AudioStore.url(entry.download_key, download=True)
    return ui.button(label, icon="download", on_click=lambda: ui.download.from_url(url, entry.filename)).props("outline no-caps")


def show_result(entry: HistoryEntry, capped: bool) -> None:
    """The newest result, in the current container."""
    with ui.card().classes("w-full gap-3").mark("result"):
        with ui.row().classes("w-full items-center justify-between"):
            with ui.row().classes("items-center gap-2"):
                ui.icon("check_circle", color="positive")
                ui.label(_("Ready")).classes("text-subtitle1 font-medium")
            ui.label(f"{entry.format_label} · {entry.voice}").classes("text-caption text-grey-7")
        ui.audio(AudioStore.url(entry.play_key)).classes("w-full").mark("result-audio")
        with ui.grid().classes("w-full grid-cols-2 sm:grid-cols-5 gap-2"):
            for name, value in entry.figures.items():
                with ui.column().classes("gap-0 q-pa-sm rounded-borders bg-grey-2").mark(f"figure-{name.lower().replace(' ', '-')}"):
                    ui.label(_(name)).classes("text-caption text-grey-7")
                    ui.label(value).classes("text-subtitle2")
                    ui.tooltip(_(FIGURE_HINTS.get(name, name)))
        if capped:
            ui.label(_("The engine reached its length limit on part of the text; the audio may be cut short.")) \
                .classes("text-caption text-warning")
        download_button(entry, label=_("Download {format}", format=entry.filename.rsplit('.', 1)[-1].upper())) \
            .mark("result-download")


class HistoryView:
    """Every result made in this browser session, newest first, each playable and downloadable."""

    def __init__(self, history: History, session: str) -> None:
        self._history = history
        self._session = session
        self.container = ui.column().classes("w-full gap-2").mark("history")
        self.refresh()

    def refresh(self) -> None:
        entries = self._history.entries(self._session)
        self.container.clear()
        with self.container:
            if not entries:
                ui.label(_("Nothing yet: what you make here is kept for this browser session.")).classes("text-grey-7")
            for number, entry in enumerate(entries):
                with ui.card().props("flat bordered").classes("w-full gap-1 q-pa-sm").mark("history-entry"):
                    with ui.row().classes("w-full items-center justify-between no-wrap"):
                        ui.label(_excerpt(entry.text)).classes("text-body2 ellipsis").style("min-width: 0")
                        ui.label(entry.made_at_text).classes("text-caption text-grey-7")
                    ui.label(
                        f"{entry.voice} · {entry.format_label} · {entry.duration_s:.1f} s"
                        + (" · " + _("streamed") if entry.streamed else "")
                    ).classes("text-caption text-grey-7").mark("history-entry-meta")
                    with ui.row().classes("w-full items-center no-wrap gap-2"):
                        ui.audio(AudioStore.url(entry.play_key)).classes("w-full").mark(f"history-audio-{number}")
                        download_button(entry, label="").props("round") \
                            .tooltip(_("Download {filename}", filename=entry.filename)) \
                            .mark(f"history-download-{number}")


def _excerpt(text: str, limit: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
