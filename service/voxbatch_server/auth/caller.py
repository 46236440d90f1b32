"""The authenticated caller of the request being served, for whoever needs to know who asked.

The auth interceptor sets it before a handler runs; `current_key_id()` is what the scheduler's fair
share, the logs and the quotas use as the caller's identity (None when the server runs without
keys). The servicer reports the audio a call produced with `charge_audio`, so that the daily
audio quota can count it when the call ends."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass
class Caller:
    key_id: str
    key_name: str
    audio_seconds: float = 0.0  # audio this call produced so far


_current: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("voxbatch_caller", default=None)


def current_caller() -> Caller | None:
    return _current.get()


def current_key_id() -> str | None:
    caller = _current.get()
    return caller.key_id if caller is not None else None


def set_caller(caller: Caller | None) -> contextvars.Token:
    return _current.set(caller)


def reset_caller(token: contextvars.Token) -> None:
    try:
        _current.reset(token)
    except ValueError:  # a stream finished in another context than it started in: nothing to undo there
        pass


def charge_audio(seconds: float) -> None:
    """Counts audio toward the current caller's daily quota (nothing without keys)."""
    caller = _current.get()
    if caller is not None:
        caller.audio_seconds += seconds
