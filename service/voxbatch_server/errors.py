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


class EngineOutOfMemory(Exception):
    """Raised by an engine when a batch does not fit in device memory.

    The batcher catches it and retries the batch in halves; it never reaches a client as such.
    """
