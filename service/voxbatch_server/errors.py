"""Domain errors. Each one maps to exactly one gRPC status in grpc_api/status.py."""

from __future__ import annotations


class VoxbatchError(Exception):
    """Base of every error the server reports to a client on purpose."""


class InvalidInput(VoxbatchError):
    """The request itself is wrong; retrying it unchanged cannot succeed."""


class Overloaded(VoxbatchError):
    """The queue is full right now; retrying later can succeed."""


class TooLarge(VoxbatchError):
    """The request needs more memory than the server allows for a whole batch."""


class DeadlineExpired(VoxbatchError):
    """The request's deadline passed before its work could run."""


class ShuttingDown(VoxbatchError):
    """The server is draining and takes no new work."""


class EngineFailure(VoxbatchError):
    """The engine failed on this request (and only this request: neighbours were retried alone)."""


class AlreadyExists(VoxbatchError):
    """Something with this name exists already (a saved voice)."""


class NotFound(VoxbatchError):
    """The named thing (a saved voice) does not exist."""


class Unsupported(VoxbatchError):
    """The server cannot do this in its present set-up (an engine that cannot clone voices)."""


class StoreFull(VoxbatchError):
    """A store's limit (how many, how large) would be exceeded."""


class StoreUnavailable(VoxbatchError):
    """A store the request needs (the shared voice store) is out of reach; retrying can succeed."""


class EngineOutOfMemory(Exception):
    """Raised by an engine when a batch does not fit in device memory.

    The batcher catches it and retries the batch in halves; it never reaches a client as such.
    """


class Unauthenticated(VoxbatchError):
    """No API key, or one the server does not know (wrong, revoked, malformed)."""


class PermissionDenied(VoxbatchError):
    """The caller's key is valid but lacks the capability this call needs."""


class QuotaExceeded(VoxbatchError):
    """A per-key quota (or the failed-attempt limit of one address) is used up for now.

    `retry_after_s` says when trying again can succeed; clients get it as google.rpc.RetryInfo."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = max(0.0, retry_after_s)
