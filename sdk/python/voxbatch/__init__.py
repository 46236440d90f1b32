"""Python SDK of the voxbatch text-to-speech service."""

from .aio import AsyncClient
from .audio import Audio, Chunk, Timings, join_chunks
from .client import Client
from .errors import (
    CancelledError,
    DeadlineExceededError,
    InvalidRequestError,
    OverloadedError,
    ServerError,
    UnavailableError,
    VoxbatchError,
)
from .options import Encoding, Priority, Reference

__all__ = [
    "AsyncClient",
    "Audio",
    "CancelledError",
    "Chunk",
    "Client",
    "DeadlineExceededError",
    "Encoding",
    "InvalidRequestError",
    "OverloadedError",
    "Priority",
    "Reference",
    "ServerError",
    "Timings",
    "UnavailableError",
    "VoxbatchError",
    "join_chunks",
]
