"""ECharts options for the server page, from GetServerInfo's recent batches and requests.
Pure functions: records in, options out (names in the page's language)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .i18n import _

_BASE: dict[str, Any] = {
    "animation": False,
    "grid": {"left": 8, "right": 16, "top": 48, "bottom": 8, "containLabel": True},
    "tooltip": {"trigger": "axis"},
}


def _time_axis(now: float, window_s: float) -> dict[str, Any]:
    return {"type": "time", "min": int((now - window_s) * 1000), "max": int(now * 1000),
            "axisLabel": {"hideOverlap": True}, "splitLine": {"show": False}}


def batch_sizes(batches: Iterable[Any], now: float, window_s: float, max_batch_size: int) -> dict[str, Any]:
    """One bar per batch at the time it finished, as tall as the sentences it held."""
    points = [[int(b.end_time_unix_seconds * 1000), b.size] for b in batches if b.end_time_unix_seconds >= now - window_s]
    return {
        **_BASE,
        "legend": {"show": False},
        "grid": {**_BASE["grid"], "top": 16},
        "xAxis": _time_axis(now, window_s),
        "yAxis": {"type": "value", "minInterval": 1, "min": 0,
                  "max": max(max_batch_size, max((p[1] for p in points), default=1))},
        "series": [{"name": _("Batch size"), "type": "bar", "data": points, "barMaxWidth": 8, "itemStyle": {"color": "#3949ab"}}],
    }


def latencies(requests: Iterable[Any], now: float, window_s: float) -> dict[str, Any]:
    """Seconds per request over time: total, until first audio (streams), and queue wait."""
    recent = [r for r in requests if r.end_time_unix_seconds >= now - window_s]

    def series(name: str, values: list[list[float]], color: str) -> dict[str, Any]:
        return {"name": name, "type": "line", "data": values, "showSymbol": True, "symbolSize": 5,
                "lineStyle": {"width": 1.5}, "itemStyle": {"color": color}}

    def at(r: Any, value: float) -> list[float]:
        return [int(r.end_time_unix_seconds * 1000), round(value, 3)]

    return {
        **_BASE,
        "legend": {"top": 0, "itemGap": 12, "textStyle": {"fontSize": 11}},
        "xAxis": _time_axis(now, window_s),
        "yAxis": {"type": "value", "min": 0, "axisLabel": {"formatter": "{value} s"}},
        "series": [
            series(_("Total"), [at(r, r.total_seconds) for r in recent], "#3949ab"),
            series(_("First audio (streams)"), [at(r, r.first_audio_seconds) for r in recent if r.streamed], "#00897b"),
            series(_("Queue wait"), [at(r, r.queue_wait_seconds) for r in recent], "#fb8c00"),
        ],
    }


def step_costs(costs: Iterable[Any]) -> dict[str, Any]:
    """The scheduler's fitted seconds per step against rows: measured points solid, extrapolated
    ones hollow (no step of that many rows ran yet)."""
    points = list(costs)

    def data(measured: bool) -> list[list[float]]:
        return [[c.rows, round(c.seconds * 1000, 2)] for c in points if (c.samples > 0) == measured]

    return {
        **_BASE,
        "legend": {"top": 0, "itemGap": 12, "textStyle": {"fontSize": 11}},
        "tooltip": {"trigger": "item"},
        "xAxis": {"type": "value", "name": _("rows"), "nameLocation": "middle", "nameGap": 24, "minInterval": 1, "min": 0,
                  "max": max((c.rows for c in points), default=8)},
        "yAxis": {"type": "value", "min": 0, "axisLabel": {"formatter": "{value} ms"}},
        "series": [
            {"name": _("Fitted line"), "type": "line", "data": [[c.rows, round(c.seconds * 1000, 2)] for c in points],
             "showSymbol": False, "lineStyle": {"width": 1, "type": "dashed"}, "itemStyle": {"color": "#9e9e9e"}},
            {"name": _("Measured"), "type": "scatter", "data": data(True), "symbolSize": 9, "itemStyle": {"color": "#3949ab"}},
            {"name": _("Extrapolated"), "type": "scatter", "data": data(False), "symbolSize": 9,
             "itemStyle": {"color": "#ffffff", "borderColor": "#3949ab", "borderWidth": 1.5}},
        ],
    }
