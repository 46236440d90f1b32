"""The frame every page shares: header with navigation, a centred column that fits a phone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui

from .backend import Problem
from .session import KEYRING

PAGES = (("Speak", "/", "graphic_eq"), ("Server", "/server", "dns"))


@contextmanager
def frame(page_title: str, current: str, site_title: str) -> Iterator[None]:
    ui.page_title(f"{page_title} · {site_title}")
    ui.colors(primary="#3949ab", secondary="#00897b", accent="#8e24aa")
    ui.query("body").classes("bg-grey-1")
    with ui.header(elevated=True).classes("items-center justify-between no-wrap px-2 sm:px-6 py-1 bg-primary"):
        with ui.row().classes("items-center gap-2 no-wrap"):
            ui.icon("record_voice_over", size="md")
            ui.label(site_title).classes("text-h6 font-medium")
        with ui.row().classes("gap-1 no-wrap"):
            for label, path, icon in PAGES:
                button = ui.button(label, icon=icon, on_click=lambda path=path: ui.navigate.to(path))
                button.props("flat no-caps dense color=white padding='4px 10px'").mark(f"nav-{label.lower()}")
                if path == current:
                    button.style("background: rgba(255, 255, 255, 0.18)").props('aria-current="page"')
            if KEYRING.current():
                def sign_out() -> None:
                    KEYRING.sign_out()
                    ui.navigate.to("/")

                ui.button("Sign out", icon="logout", on_click=sign_out).props(
                    "flat no-caps dense color=white padding='4px 10px'").mark("sign-out")
    with ui.column().classes("w-full max-w-4xl mx-auto p-2 sm:p-6 gap-4"):
        yield


def section(title: str, icon: str) -> ui.card:
    """A card with a heading; use it as a context manager."""
    card = ui.card().classes("w-full gap-3")
    with card:
        with ui.row().classes("items-center gap-2"):
            ui.icon(icon, color="primary")
            ui.label(title).classes("text-subtitle1 font-medium")
    return card


def problem_banner(problem: Problem, *, retrying: bool = False) -> ui.element:
    """A red box that says what went wrong and what to do; never a stack trace."""
    with ui.element("div").classes(
        "w-full rounded-borders bg-red-1 text-red-10 q-pa-md row items-start no-wrap gap-3"
    ).props('role="alert"').mark("problem") as box:
        ui.icon("cloud_off" if problem.kind == "unreachable" else "error_outline", size="sm").classes("q-mt-xs")
        with ui.column().classes("gap-1"):
            ui.label(problem.title).classes("text-subtitle1 font-medium").mark("problem-title")
            ui.label(problem.detail).mark("problem-detail")
            if retrying:
                with ui.row().classes("items-center gap-2 text-caption"):
                    ui.spinner(size="xs")
                    ui.label("Trying again automatically…")
    return box
