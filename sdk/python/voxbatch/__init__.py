"""Python SDK of the voxbatch text-to-speech service."""

from .aio import AsyncClient
from .audio import Audio, Chunk, Timings, join_chunks
from .client import Client
from .errors import (
    AuthenticationError,
    CancelledError,
    DeadlineExceededError,
    InvalidRequestError,
    OverloadedError,
    PermissionDeniedError,
    ServerError,
    UnavailableError,
    VoxbatchError,
)
from .options import Encoding, Priority, Reference

__all__ = [
    "AsyncClient",
    "Audio",
    "AuthenticationError",
    "CancelledError",
    "Chunk",
    "Client",
    "DeadlineExceededError",
    "Encoding",
    "InvalidRequestError",
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
