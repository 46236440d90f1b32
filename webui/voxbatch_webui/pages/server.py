"""The server page: engine and model, batching settings, live queue depth, and charts of batch
sizes and latency over the last minutes, refreshed while the page is open."""

from __future__ import annotations

import time

from nicegui import ui

from voxbatch import Encoding

from .. import charts
from ..audio_files import LABELS
from ..backend import Problem, explain
from ..context import WebUI
from ..i18n import N_, _, plural
from ..layout import frame, problem_banner, section


def server_page(webui: WebUI) -> None:
    with frame("Server", "/server", webui.settings.title):
        ServerPage(webui)


class ServerPage:
    def __init__(self, webui: WebUI) -> None:
        self.webui = webui
        self.window_s = webui.settings.chart_minutes * 60
        self.status = ui.column().classes("w-full")
        self.values: dict[str, ui.label] = {}
        self._problem: Problem | None = None
        with ui.row().classes("w-full items-center gap-2 text-grey-8"):
            ui.icon("lan")
            ui.label(_("Speech server at {server}", server=webui.settings.server)).mark("server-address")
            self.updated = ui.label().classes("text-caption text-grey-6").mark("updated")
        with ui.grid().classes("w-full grid-cols-1 md:grid-cols-3 gap-4"):
            with section(_("Right now"), "speed").classes("md:col-span-1"):
                with ui.row().classes("items-baseline gap-2"):
                    self.queue = ui.label("–").classes("text-h4 font-medium").mark("queue-depth")
                    ui.label(_("sentences waiting")).classes("text-grey-7")
                self.queue_bar = ui.linear_progress(value=0, show_value=False, size="8px").mark("queue-bar")
                self._rows(((N_("Running batches"), "running"), (N_("Queue limit"), "max_queue")))
            with section(_("Engine"), "memory").classes("md:col-span-1"):
                self._rows(((N_("Engine"), "engine"), (N_("Model"), "model"), (N_("Server version"), "version"),
                            (N_("Native sample rate"), "rate"), (N_("Voice cloning"), "cloning"),
                            (N_("Parameters"), "parameters"), (N_("Formats"), "formats"), (N_("Longest text"), "max_text")))
            with section(_("Batching"), "view_module").classes("md:col-span-1"):
                self._rows(((N_("Batch window"), "window"), (N_("Largest batch"), "max_batch"), (N_("Workers"), "workers"),
                            (N_("Memory budget"), "memory"), (N_("Scheduler"), "scheduler"),
                            (N_("Per-caller queue"), "per_caller"), (N_("Streams"), "streams")))
        minutes = plural(1 if webui.settings.chart_minutes == 1 else 2,
                         "{count} minute", "{count} minutes", count=f"{webui.settings.chart_minutes:g}")
        with section(_("Batch sizes, last {minutes}", minutes=minutes), "bar_chart"):
            ui.label(_("Each bar is one batch the engine ran: how many sentences it spoke together.")) \
                .classes("text-caption text-grey-7")
            self.batch_chart = ui.echart(charts.batch_sizes([], time.time(), self.window_s, 8)) \
                .classes("w-full h-64").mark("batch-chart")
        with section(_("Cost of one step against rows"), "show_chart"):
            ui.label(_("What the scheduler has learned one generation step (for some engines, one batch) costs "
                       "with that many rows; it admits rows only while streams stay ahead of playback.")) \
                .classes("text-caption text-grey-7")
            self.cost_chart = ui.echart(charts.step_costs([])).classes("w-full h-64").mark("cost-chart")
        with section(_("Latency, last {minutes}", minutes=minutes), "timeline"):
            ui.label(_("Seconds per request, as people waited for it.")).classes("text-caption text-grey-7")
            self.latency_chart = ui.echart(charts.latencies([], time.time(), self.window_s)) \
                .classes("w-full h-64").mark("latency-chart")
        self.timer = ui.timer(webui.settings.refresh_s, self.refresh, immediate=True)

    def _rows(self, rows: tuple[tuple[str, str], ...]) -> None:
        with ui.column().classes("w-full gap-1"):
            for label, key in rows:
                with ui.row().classes("w-full justify-between items-start no-wrap gap-2"):
                    ui.label(_(label)).classes("text-grey-7")
                    self.values[key] = ui.label("–").classes("text-right font-medium").style("overflow-wrap: anywhere") \
                        .mark(f"value-{key}")

    async def refresh(self) -> None:
        try:
            info = await self.webui.backend.server_info()
        except Exception as error:  # noqa: BLE001 - shown in words; the timer keeps trying
            problem = explain(error, self.webui.settings.server)
            if problem != self._problem:
                self._problem = problem
                self.status.clear()
                with self.status:
                    problem_banner(problem, retrying=True)
                if self.updated.text:
                    self.updated.set_text(_("(the figures below are from before the server stopped answering)"))
            return
        if self._problem is not None:
            self._problem = None
            self.status.clear()
        b = info.batching
        shown = {
            "running": str(info.running_batches),
            "max_queue": _("{count} sentences", count=f"{b.max_queue_size:,}"),
            "engine": info.engine,
            "model": info.model,
            "version": info.server_version,
            "rate": f"{info.native_sample_rate_hz:,} Hz",
            "cloning": _("yes") if info.supports_cloning else _("no"),
            "parameters": ", ".join(p.name for p in info.parameters) or _("none"),
            "formats": ", ".join(_(LABELS[Encoding(e)]) for e in info.encodings if e in {x.value for x in Encoding}),
            "max_text": _("{count} characters", count=f"{info.max_text_chars:,}"),
            "window": f"{b.window_ms} ms",
            "max_batch": _("{count} sentences", count=b.max_batch_size),
            "workers": str(b.workers),
            "memory": f"{b.memory_budget_bytes / (1 << 20):,.0f} MiB",
            "scheduler": _scheduler_text(b),
            "per_caller": _("{count} sentences", count=b.max_queued_per_caller) if b.max_queued_per_caller else _("no cap"),
            "streams": _("{on_time} on time, {stalled} stalled", on_time=f"{info.scheduler.streams_viable:,}",
                         stalled=f"{info.scheduler.streams_stalled:,}"),
        }
        for key, text in shown.items():
            self.values[key].set_text(text)
        self.queue.set_text(str(info.queue_depth))
        self.queue_bar.set_value(min(1.0, info.queue_depth / b.max_queue_size) if b.max_queue_size else 0)
        now = time.time()
        self._replace(self.batch_chart, charts.batch_sizes(info.recent_batches, now, self.window_s, b.max_batch_size))
        self._replace(self.latency_chart, charts.latencies(info.recent_requests, now, self.window_s))
        self._replace(self.cost_chart, charts.step_costs(info.step_costs))
        self.updated.set_text(_("updated {time}", time=time.strftime('%H:%M:%S')))

    @staticmethod
    def _replace(chart: ui.echart, options: dict) -> None:
        chart.options.clear()
        chart.options.update(options)
        chart.update()


def _scheduler_text(b) -> str:
    if b.scheduler == "streaming":
        return _("streaming-aware, {margin} ms margin", margin=b.stream_margin_ms)
    return b.scheduler or "greedy"
