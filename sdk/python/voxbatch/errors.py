"""Typed errors raised by the clients; each carries the gRPC status and the server's message."""

from __future__ import annotations

import grpc


class VoxbatchError(Exception):
    """A call failed. `code` is the gRPC status code, `details` the server's explanation,
    `retry_after_s` when the server said when trying again can succeed (google.rpc.RetryInfo),
    else None."""

    def __init__(self, code: grpc.StatusCode, details: str, retry_after_s: float | None = None) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details
        self.retry_after_s = retry_after_s


class InvalidRequestError(VoxbatchError, ValueError):
    """INVALID_ARGUMENT: the request is wrong; fix it before retrying. Raised by the server, or
    by the client itself for arguments it can check before any call."""


def invalid_argument(message: str) -> InvalidRequestError:
    """The error for a bad argument found on the client side, before any call."""
    return InvalidRequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


class OverloadedError(VoxbatchError):
    """RESOURCE_EXHAUSTED: the server is full or the request too large."""


class DeadlineExceededError(VoxbatchError):
    """DEADLINE_EXCEEDED: the request did not finish in time."""


class UnavailableError(VoxbatchError):
    """UNAVAILABLE: the server cannot be reached or is shutting down; retrying can succeed."""


class AuthenticationError(VoxbatchError):
    """UNAUTHENTICATED: no API key, or one the server does not accept (wrong or revoked)."""


class PermissionDeniedError(VoxbatchError):
    """PERMISSION_DENIED: the API key is valid but may not make this call (a missing capability)."""


class CancelledError(VoxbatchError):
    """CANCELLED: the call was cancelled."""


class AlreadyExistsError(VoxbatchError):
    """ALREADY_EXISTS: the name is taken (a saved voice)."""


class NotFoundError(VoxbatchError):
    """NOT_FOUND: no such saved voice."""


class FailedPreconditionError(VoxbatchError):
    """FAILED_PRECONDITION: the server cannot do this as it is set up (an engine that cannot clone)."""


class ServerError(VoxbatchError):
    """INTERNAL or another server-side failure."""


_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: OverloadedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
}


def from_rpc_error(error: grpc.RpcError) -> VoxbatchError:
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    details = error.details() if callable(getattr(error, "details", None)) else str(error)
    return _BY_CODE.get(code, ServerError)(code, details or code.name, _retry_after(error))


def _retry_after(error: grpc.RpcError) -> float | None:
    """RetryInfo's delay from the rich status (grpc-status-details-bin), if the server sent one."""
    trailing = error.trailing_metadata() if callable(getattr(error, "trailing_metadata", None)) else None
    for name, value in trailing or ():
        if name != "grpc-status-details-bin":
            continue
        from google.rpc import error_details_pb2, status_pb2

        try:
            status = status_pb2.Status.FromString(value)
        except Exception:  # noqa: BLE001 - a malformed trailer is no reason to lose the error itself
            return None
        for detail in status.details:
            info = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None
