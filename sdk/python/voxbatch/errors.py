"""Typed errors raised by the clients; each carries the gRPC status and the server's message."""

from __future__ import annotations

import grpc


class VoxbatchError(Exception):
    """A call failed. `code` is the gRPC status code, `details` the server's explanation."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


class InvalidRequestError(VoxbatchError):
    """INVALID_ARGUMENT: the request is wrong; fix it before retrying."""


class OverloadedError(VoxbatchError):
    """RESOURCE_EXHAUSTED: the server is full or the request too large."""


class DeadlineExceededError(VoxbatchError):
    """DEADLINE_EXCEEDED: the request did not finish in time."""


class UnavailableError(VoxbatchError):
    """UNAVAILABLE: the server cannot be reached or is shutting down; retrying can succeed."""


class CancelledError(VoxbatchError):
    """CANCELLED: the call was cancelled."""


class ServerError(VoxbatchError):
    """INTERNAL or another server-side failure."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: OverloadedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.CANCELLED: CancelledError,
}


def from_rpc_error(error: grpc.RpcError) -> VoxbatchError:
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    details = error.details() if callable(getattr(error, "details", None)) else str(error)
    return _BY_CODE.get(code, ServerError)(code, details or code.name)
