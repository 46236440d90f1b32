"""Sign-in: asked once per browser session when the server requires an API key.

The key goes from the password field to the web UI's memory (session.KEYRING), never into the
page after that, a URL or a cookie; the field is emptied at once."""

from __future__ import annotations

from nicegui import ui
from nicegui.context import context

from voxbatch import UnavailableError

from ..context import WebUI
from ..i18n import N_, _
from ..layout import frame, section
from ..session import KEYRING


async def needs_sign_in(webui: WebUI) -> bool:
    """True when this browser session has no key and the server requires one."""
    return not KEYRING.current() and await webui.backend.needs_key()


def sign_in_page(webui: WebUI, then: str) -> None:
    with frame(N_("Sign in"), "", webui.settings.title):
        with section(_("Sign in"), "key"):
            ui.label(_("This speech server requires an API key. Paste yours to continue; it is kept on the "
                       "web UI's server for this browser session only, until you sign out.")).classes("text-body2")
            field = ui.input(_("API key"), password=True).props('autocomplete="off" outlined').classes("w-full").mark("api-key")
            message = ui.label("").classes("text-negative").mark("sign-in-error")

            async def submit() -> None:
                key = (field.value or "").strip()
                field.value = ""  # not a moment longer in the page than needed
                message.text = ""
                address = context.client.request.client.host if context.client.request and context.client.request.client else "?"
                wait = KEYRING.wait_s(address)
                if wait > 0:
                    message.text = _("Too many failed attempts. Try again in {seconds} s.", seconds=f"{wait:.0f}")
                    return
                if not key:
                    message.text = _("Paste your API key first.")
                    return
                try:
                    accepted = await webui.backend.accepts(key)
                except UnavailableError:
                    message.text = _("The speech server can't be reached at {server}. Try again in a moment.",
                                     server=webui.settings.server)
                    return
                if not accepted:
                    KEYRING.failed(address)
                    message.text = _("The server does not accept this key. Check it, or ask for a new one.")
                    return
                KEYRING.sign_in(key)
                ui.navigate.to(then)

            field.on("keydown.enter", submit)
            ui.button(_("Sign in"), icon="login", on_click=submit).props("unelevated no-caps").mark("sign-in")
