"""Python SDK of the voxbatch text-to-speech service."""

from .aio import AsyncClient
from .audio import Audio, Chunk, Timings, join_chunks
from .client import Client
from .errors import (
    AuthenticationError,
    AlreadyExistsError,
    CancelledError,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidRequestError,
    NotFoundError,
    OverloadedError,
    PermissionDeniedError,
    ServerError,
    UnavailableError,
    VoxbatchError,
)
from .options import Encoding, Priority, Reference

__all__ = [
    "AlreadyExistsError",
    "AsyncClient",
    "Audio",
    "AuthenticationError",
    "CancelledError",
    "Chunk",
    "Client",
    "DeadlineExceededError",
    "Encoding",
    "FailedPreconditionError",
    "InvalidRequestError",
    "NotFoundError",
    "OverloadedError",
    "PermissionDeniedError",
    "Priority",
    "Reference",
    "ServerError",
    "Timings",
    "UnavailableError",
    "VoxbatchError",
    "join_chunks",
]
