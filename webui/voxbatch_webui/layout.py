"""The frame every page shares: header with navigation, a centred column that fits a phone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui

from . import i18n
from .backend import Problem
from .session import KEYRING
from .i18n import N_, _

PAGES = (("Speak", "/", "graphic_eq"), ("Voices", "/voices", "record_voice_over"), ("Server", "/server", "dns"))
_PAGE_LABELS = (N_("Speak"), N_("Voices"), N_("Server"))  # for the catalogue; shown with _(label)


@contextmanager
def frame(page_title: str, current: str, site_title: str) -> Iterator[None]:
    """`page_title` in English (one of PAGES' labels); it is shown translated."""
    ui.page_title(f"{_(page_title)} · {site_title}")
    ui.colors(primary="#3949ab", secondary="#00897b", accent="#8e24aa")
    ui.query("body").classes("bg-grey-1")
    with ui.header(elevated=True).classes("items-center justify-between no-wrap px-2 sm:px-6 py-1 bg-primary"):
        with ui.row().classes("items-center gap-2 no-wrap"):
            ui.icon("record_voice_over", size="md")
            ui.label(site_title).classes("text-h6 font-medium max-sm:hidden")
        with ui.row().classes("gap-1 no-wrap"):
            for label, path, icon in PAGES:
                button = ui.button(_(label), icon=icon, on_click=lambda path=path: ui.navigate.to(path))
                button.props("flat no-caps dense color=white padding='4px 10px'").mark(f"nav-{label.lower()}")
                if path == current:
                    button.style("background: rgba(255, 255, 255, 0.18)").props('aria-current="page"')
            if KEYRING.current():
                def sign_out() -> None:
                    KEYRING.sign_out()
                    ui.navigate.to("/")

                ui.button(_("Sign out"), icon="logout", on_click=sign_out).props(
                    "flat no-caps dense color=white padding='4px 10px'").mark("sign-out")
            language_switch()
    with ui.column().classes("w-full max-w-4xl mx-auto p-2 sm:p-6 gap-4"):
        yield


def connecting(server: str) -> None:
    """What a page shows until the server first answers (its loader keeps retrying)."""
    with ui.row().classes("items-center gap-2 text-grey-8").mark("connecting"):
        ui.spinner(size="sm")
        ui.label(_("Connecting to the speech server at {server}…", server=server))


def language_switch() -> None:
    """A button naming the other language (English / 中文): the choice is kept for the person and
    the page reloads in it."""
    language = i18n.current()
    ui.run_javascript(f"document.documentElement.lang = {'zh-CN' if language == 'zh' else 'en'!r}")
    other = next(code for code in i18n.LANGUAGES if code != language)

    def switch() -> None:
        i18n.choose(other)
        ui.navigate.reload()

    ui.button(i18n.LANGUAGES[other], icon="translate", on_click=switch) \
        .props(f"flat no-caps dense color=white padding='4px 8px' lang={'zh-CN' if other == 'zh' else 'en'}") \
        .mark("language-switch").tooltip(_("Language"))


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
                    ui.label(_("Trying again automatically…"))
    return box
