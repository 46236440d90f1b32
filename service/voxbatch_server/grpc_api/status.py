"""The one place where errors become gRPC status codes."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable

import grpc

from ..errors import (
    DeadlineExpired,
    EngineFailure,
    InvalidInput,
    Overloaded,
    ShuttingDown,
    TooLarge,
    VoxbatchError,
)

log = logging.getLogger(__name__)

STATUS_OF: dict[type[VoxbatchError], grpc.StatusCode] = {
    InvalidInput: grpc.StatusCode.INVALID_ARGUMENT,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    DeadlineExpired: grpc.StatusCode.DEADLINE_EXCEEDED,
    ShuttingDown: grpc.StatusCode.UNAVAILABLE,
    EngineFailure: grpc.StatusCode.INTERNAL,
}


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    for kind, code in STATUS_OF.items():
        if isinstance(exc, kind):
            return code, str(exc)
    return grpc.StatusCode.INTERNAL, "internal server error; the server log has the details"


async def _abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    code, message = status_of(exc)
    if code is grpc.StatusCode.INTERNAL:
        log.error("failed: %s", message if isinstance(exc, VoxbatchError) else repr(exc), exc_info=not isinstance(exc, VoxbatchError))
    else:
        log.info("refused with %s: %s", code.name, message)
    await context.abort(code, message)


def unary(method: Callable) -> Callable:
    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            return await method(self, request, context)
        except Exception as exc:  # noqa: BLE001 - every error gets a status
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await _abort(context, exc)

    return wrapper


def server_stream(method: Callable[..., AsyncIterator]) -> Callable:
    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            async for item in method(self, request, context):
                yield item
        except Exception as exc:  # noqa: BLE001 - every error gets a status
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await _abort(context, exc)

    return wrapper
