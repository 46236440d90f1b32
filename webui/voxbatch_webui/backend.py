"""The web UI's only door to the server: the voxbatch SDK over gRPC, and what its errors mean to a
person. Nothing here knows about pages; nothing in the pages knows about gRPC."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from voxbatch import (
    AlreadyExistsError,
    AsyncClient,
    Audio,
    AuthenticationError,
    Chunk,
    DeadlineExceededError,
    Encoding,
    FailedPreconditionError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    Reference,
    UnavailableError,
    VoxbatchError,
)

from .i18n import N_, _, language_name, script_name

log = logging.getLogger(__name__)

CONTROL_TIMEOUT_S = 5.0  # server info and voices: a person is looking at a page


@dataclass(frozen=True)
class ServerSnapshot:
    """What a page needs to build its form: GetServerInfo and ListVoices, as the SDK returns them."""

    info: Any  # voxbatch.tts.v1.tts_pb2.GetServerInfoResponse
    voices: Any  # voxbatch.tts.v1.tts_pb2.ListVoicesResponse

    @property
    def encodings(self) -> list[Encoding]:
        found = [Encoding(e) for e in self.info.encodings if e in {x.value for x in Encoding}]
        return found or [Encoding.WAV]

    def parameter_names(self) -> list[str]:
        return [p.name for p in self.info.parameters]


@dataclass
class SynthesisOptions:
    """One request as the synthesis form fills it in."""

    text: str
    voice: str = ""
    encoding: Encoding = Encoding.WAV
    sample_rate: int = 0
    parameters: dict[str, float | int] = field(default_factory=dict)
    reference: Reference | None = None
    instructions: str = ""  # "Describe the voice", for engines that follow instructions
    normalize: bool | None = None  # spell out numbers, dates, units...; None: the engine's default

    def sdk_options(self) -> dict[str, Any]:
        options: dict[str, Any] = dict(voice=self.voice, encoding=self.encoding, sample_rate=self.sample_rate)
        options.update(self.parameters)
        if self.reference is not None:
            options["reference"] = self.reference
        if self.instructions:
            options["instructions"] = self.instructions
        if self.normalize is not None:
            options["normalize"] = self.normalize
        return options


@dataclass(frozen=True)
class Problem:
    """An error as a person should read it: a short title and one or two plain sentences."""

    title: str
    detail: str
    kind: str  # unreachable, invalid, reference, busy, timeout, failed, auth, denied


class Backend:
    """Owns the SDK clients. They are made inside the running event loop on first use, and made
    anew after the server could not be reached, so a server that comes back (or is still starting)
    is found at once instead of after gRPC's reconnect back-off.

    With a server that requires API keys, each signed-in person's calls carry their own key:
    `key_source()` names the key of the browser session being served, and each key has its own
    clients (a person's key never travels on another person's calls)."""

    def __init__(self, target: str, timeout_s: float, key_source: Callable[[], str] | None = None,
                 ca_file: str | None = None) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.ca_file = ca_file or None
        self._key_source = key_source or (lambda: "")
        self._clients: dict[tuple[str, str], AsyncClient] = {}  # (control or work, key) -> client
        self._retired: list[AsyncClient] = []

    def _client(self, kind: str, key: str | None = None) -> AsyncClient:
        key = self._key_source() if key is None else key
        client = self._clients.get((kind, key))
        if client is None:
            timeout = CONTROL_TIMEOUT_S if kind == "control" else self.timeout_s
            # api_key="" (not None): never fall back to the web UI process's VOXBATCH_API_KEY.
            client = AsyncClient(self.target, timeout=timeout, api_key=key, ca_file=self.ca_file)
            self._clients[(kind, key)] = client
        return client

    def _control_client(self) -> AsyncClient:
        return self._client("control")

    def _work_client(self) -> AsyncClient:
        return self._client("work")

    def _unreachable(self) -> None:
        # Calls still running on the old channels (another person's stream) are left to finish;
        # the channels are closed at shutdown.
        self._retired.extend(self._clients.values())
        self._clients.clear()

    def forget(self, key: str) -> None:
        """A person signed out: their key's clients go (closed at shutdown, like retired ones)."""
        for kind in ("control", "work"):
            client = self._clients.pop((kind, key), None)
            if client is not None:
                self._retired.append(client)

    async def needs_key(self) -> bool:
        """True when the server refuses calls without an API key (False when it cannot be reached:
        the page then says so and retries)."""
        try:
            await self._client("control", "").server_info()
        except AuthenticationError:
            return True
        except UnavailableError:
            self._unreachable()
        except VoxbatchError:
            pass
        return False

    async def accepts(self, key: str) -> bool:
        """Whether the server accepts `key` (raises UnavailableError when it cannot be reached)."""
        client = AsyncClient(self.target, timeout=CONTROL_TIMEOUT_S, api_key=key, ca_file=self.ca_file)
        try:
            await client.server_info()
            return True
        except AuthenticationError:
            return False
        finally:
            await client.close()

    async def snapshot(self) -> ServerSnapshot:
        client = self._control_client()
        try:
            info, voices = await asyncio.gather(client.server_info(), client.voices())
        except UnavailableError:
            self._unreachable()
            raise
        return ServerSnapshot(info, voices)

    async def server_info(self):
        try:
            return await self._control_client().server_info()
        except UnavailableError:
            self._unreachable()
            raise

    async def synthesize(self, options: SynthesisOptions) -> Audio:
        try:
            return await self._work_client().synthesize(options.text, **options.sdk_options())
        except UnavailableError:
            self._unreachable()
            raise

    async def stream(self, options: SynthesisOptions) -> AsyncIterator[Chunk]:
        """The chunks in order; leaving the loop early cancels the server-side work."""
        try:
            async for chunk in self._work_client().stream(options.text, **options.sdk_options()):
                yield chunk
        except UnavailableError:
            self._unreachable()
            raise

    # -- saved voices ------------------------------------------------------------------------

    async def voices(self):
        return await self._call(self._control_client().voices())

    async def create_voice(self, name: str, reference: Reference, description: str, languages: list[str]):
        # The work client: the server decodes and encodes the clip, which may take a while.
        return await self._call(
            self._work_client().create_voice(name, reference, description=description, languages=languages)
        )

    async def voice_clip(self, name: str) -> bytes:
        return (await self._call(self._control_client().get_voice(name, include_audio=True))).reference_audio

    async def delete_voice(self, name: str) -> None:
        await self._call(self._control_client().delete_voice(name))

    async def _call(self, call):
        try:
            return await call
        except UnavailableError:
            self._unreachable()
            raise

    async def close(self) -> None:
        for client in [*self._clients.values(), *self._retired]:
            await client.close()
        self._clients.clear()
        self._retired.clear()


_PLAIN_REFERENCE = (
    (re.compile(r"could not be decoded"),
     N_("It is not an audio file the server can read. Upload a WAV, FLAC, Ogg or MP3 recording.")),
    (re.compile(r"decodes to no samples"), N_("The file holds no sound. Upload a recording of the voice.")),
    (re.compile(r"is ([\d.]+) s long; send at least ([\d.]+) s"),
     N_("The clip is only {0} s long; record at least {1} s of speech.")),
    (re.compile(r"is ([\d.]+) s long; the limit is ([\d.]+) s"),
     N_("The clip is {0} s long; the server accepts at most {1} s. Trim it.")),
    (re.compile(r"transcript is empty"), N_("Type what is said in the clip, word for word.")),
    (re.compile(r"is empty"), N_("The file is empty. Upload a recording of the voice.")),
    (re.compile(r"invalid samples"), N_("The recording contains invalid samples. Export it again as WAV and retry.")),
)
_FOREIGN_SCRIPT = re.compile(r"mostly in (.+?) script.*?voice '(.+?)' cannot read: it speaks ([^;]*); (.*)")


def explain(error: BaseException, target: str) -> Problem:
    """What went wrong, for a person: never a stack trace, never a gRPC status name alone. The
    words are the UI's, in the person's language; the server's own explanations, quoted where no
    better words exist, are English."""
    if isinstance(error, UnavailableError):
        if "shutting down" in error.details.lower():
            return Problem(_("The speech server is shutting down"),
                           _("It is not taking new work. Try again once it has restarted."), "unreachable")
        return Problem(_("The speech server can't be reached"),
                       _("Nothing answered at {target}. It may still be starting, or it has stopped. "
                         "Try again in a moment.", target=target), "unreachable")
    if isinstance(error, InvalidRequestError):
        return _invalid(error.details)
    if isinstance(error, AuthenticationError):
        return Problem(_("Your API key is not accepted"),
                       _("The server does not accept the key you signed in with (it may have been revoked). "
                         "Sign out and sign in with a valid key."), "auth")
    if isinstance(error, PermissionDeniedError):
        return Problem(_("Your API key may not do this"), _sentence(error.details), "denied")
    if isinstance(error, OverloadedError) and "quota" in error.details.lower():
        wait = " " + _("Try again in {seconds} s.", seconds=f"{error.retry_after_s:.0f}") if error.retry_after_s else ""
        return Problem(_("Your API key's quota is used up"), _sentence(error.details.split(";")[0]) + wait, "busy")
    if isinstance(error, AlreadyExistsError):
        return Problem(_("That name is taken"), _("A voice with this name exists already. Pick another name, or "
                                                   "delete the other voice first."), "invalid")
    if isinstance(error, NotFoundError):
        return Problem(_("The voice is gone"), _("Nobody has a voice by that name any more; it may have been "
                                                  "deleted meanwhile."), "invalid")
    if isinstance(error, FailedPreconditionError):
        return Problem(_("The server can't do that"), _sentence(error.details), "invalid")
    if isinstance(error, OverloadedError):
        if "queue" in error.details.lower():
            return Problem(_("The server is busy"), _("Too many requests are waiting. Try again in a few seconds."),
                           "busy")
        return Problem(_("The request is too large for the server"), _sentence(error.details), "busy")
    if isinstance(error, DeadlineExceededError):
        return Problem(_("The server took too long"), _("The request did not finish in time. Try a shorter text, "
                                                         "or try again when the server is less busy."), "timeout")
    if isinstance(error, VoxbatchError):
        return Problem(_("The speech engine failed"), _("Something went wrong on the server while speaking this "
                                                         "text. Try again, or change the text."), "failed")
    log.error("unexpected error in the web UI: %r", error, exc_info=error)
    return Problem(_("Something went wrong in the web UI"), _("The details are in the web UI's log. Try again."),
                   "failed")


def _invalid(details: str) -> Problem:
    if details.startswith("reference."):
        for pattern, plain in _PLAIN_REFERENCE:
            match = pattern.search(details)
            if match:
                return Problem(_("The reference clip can't be used"), _(plain).format(*match.groups()), "reference")
        return Problem(_("The reference clip can't be used"), _sentence(details), "reference")
    match = re.search(r"text is (\d+) characters long; the limit is (\d+)", details)
    if match:
        return Problem(_("The text is too long"),
                       _("It has {count} characters; the server accepts at most {limit}. Shorten it or split it "
                         "into parts.", count=f"{int(match[1]):,}", limit=f"{int(match[2]):,}"), "invalid")
    match = _FOREIGN_SCRIPT.search(details)
    if match:
        script, voice, languages, rest = match.groups()
        able = rest.partition("voices that can: ")[2].strip()
        spoken = ", ".join(language_name(code.strip()) for code in languages.split(",") if code.strip())
        values = dict(script=script_name(script), voice=voice, languages=spoken, voices=able)
        detail = (_("The text is mostly in {script}, and the voice {voice} speaks {languages}. Choose a voice that "
                    "can read it: {voices}.", **values) if able else
                  _("The text is mostly in {script}, and the voice {voice} speaks {languages}. No voice on this "
                    "server reads it.", **values))
        return Problem(_("This voice can't read this text"), detail, "invalid")
    return Problem(_("The server can't use this request"), _sentence(details), "invalid")


def _sentence(details: str) -> str:
    text = details.strip()
    if not text:
        return _("No reason was given.")
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
