"""The one place where errors become gRPC status codes, and where every RPC's outcome is counted.

The decorators below wrap servicer methods; a servicer with a `metrics` attribute (metrics.Metrics,
or None) gets each call's final status code recorded there.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable

import grpc

from ..domain import DEADLINE_SLACK_S
from ..errors import (
    AlreadyExists,
    DeadlineExpired,
    EngineFailure,
    InvalidInput,
    NotFound,
    Overloaded,
    PermissionDenied,
    QuotaExceeded,
    ShuttingDown,
    StoreFull,
    StoreUnavailable,
    TooLarge,
    Unauthenticated,
    Unsupported,
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
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    QuotaExceeded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    NotFound: grpc.StatusCode.NOT_FOUND,
    Unsupported: grpc.StatusCode.FAILED_PRECONDITION,
    StoreFull: grpc.StatusCode.RESOURCE_EXHAUSTED,
    StoreUnavailable: grpc.StatusCode.UNAVAILABLE,
}


# Messages travel in the grpc-message trailer, percent-encoded, and clients drop trailers over
# 8-16 KiB (the call then fails with RESOURCE_EXHAUSTED). Messages may quote what the client sent
# (an unknown voice name), so they are cut to a size that always fits: 500 characters.
MAX_MESSAGE_CHARS = 500


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    for kind, code in STATUS_OF.items():
        if isinstance(exc, kind):
            return code, _bounded(str(exc))
    return grpc.StatusCode.INTERNAL, "internal server error; the server log has the details"


def status_details(exc: BaseException, code: grpc.StatusCode, message: str) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata with the rich status (google.rpc.Status in grpc-status-details-bin) for
    errors that carry more than a message: a refused quota says when to retry (google.rpc.RetryInfo),
    which gRPC clients, Envoy (grpc-status-details-bin passes through) and the SDKs read."""
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is None:
        return ()
    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import error_details_pb2, status_pb2

    whole = int(retry_after)
    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=whole, nanos=int((retry_after - whole) * 1e9)))
    detail = any_pb2.Any()
    detail.Pack(info)
    rich = status_pb2.Status(code=code.value[0], message=message, details=[detail])
    return (("grpc-status-details-bin", rich.SerializeToString()),)


async def abort(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    """Ends the call with the status of `exc` (and its details, see status_details)."""
    code, message = status_of(exc)
    await context.abort(code, message, status_details(exc, code, message))


def _bounded(message: str) -> str:
    """The message, its middle cut out when too long (its end often names what is accepted)."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    keep = MAX_MESSAGE_CHARS - 5
    return f"{message[: keep * 2 // 3]} ... {message[-(keep - keep * 2 // 3):]}"


async def _abort(servicer, rpc: str, request, context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    code, message = status_of(exc)
    fields = {"rpc": rpc, "outcome": code.name}
    if getattr(request, "request_id", ""):
        fields["request_id"] = request.request_id
    if code is grpc.StatusCode.INTERNAL:
        log.error(
            "failed: %s", message if isinstance(exc, VoxbatchError) else repr(exc),
            exc_info=not isinstance(exc, VoxbatchError), extra=fields,
        )
    else:
        log.info("refused with %s: %s", code.name, message, extra=fields)
    _count(servicer, rpc, code)
    await context.abort(code, message, status_details(exc, code, message))


def _count(servicer, rpc: str, code: grpc.StatusCode) -> None:
    metrics = getattr(servicer, "metrics", None)
    if metrics is not None:
        metrics.rpc_done(rpc, code.name)


def _caller_left(servicer, rpc: str, context: grpc.aio.ServicerContext) -> None:
    """gRPC cancelled the handler: the client's deadline passed, or the client left."""
    remaining = context.time_remaining()
    expired = remaining is not None and remaining <= DEADLINE_SLACK_S
    _count(servicer, rpc, grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED)


def unary(method: Callable) -> Callable:
    rpc = method.__name__

    @functools.wraps(method)
    async def wrapper(self, request, context):
        try:
            response = await method(self, request, context)
        except asyncio.CancelledError:
            _caller_left(self, rpc, context)
            raise
        except Exception as exc:  # noqa: BLE001 - every error gets a status
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await _abort(self, rpc, request, context, exc)
        else:
            _count(self, rpc, grpc.StatusCode.OK)
            return response

    return wrapper


def server_stream(method: Callable[..., AsyncIterator]) -> Callable:
    rpc = method.__name__

    @functools.wraps(method)
    async def wrapper(self, request, context):
        stream = method(self, request, context)
        try:
            async for item in stream:
                yield item
        except (asyncio.CancelledError, GeneratorExit):
            # Close the inner stream here, in this call's context, rather than leaving it to the
            # event loop's finaliser (another task, another context).
            await stream.aclose()
            _caller_left(self, rpc, context)  # the caller left mid-stream, or its deadline passed
            raise
        except Exception as exc:  # noqa: BLE001 - every error gets a status
            if isinstance(exc, grpc.aio.AbortError):
                raise
            await _abort(self, rpc, request, context, exc)
        else:
            _count(self, rpc, grpc.StatusCode.OK)

    return wrapper


class _Undecodable:
    """Stands in for a request message whose bytes did not parse."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class UndecodableRequests(grpc.aio.ServerInterceptor):
    """Answers INVALID_ARGUMENT to request bytes that are not a valid message of the RPC (corrupt
    or truncated wire format, bad UTF-8 in a string field). Without it, gRPC reports the parse
    error as UNKNOWN. Applies to the methods of the services named in `services`."""

    def __init__(self, services: tuple[str, ...]) -> None:
        self._prefixes = tuple(f"/{name}/" for name in services)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if (
            handler is None
            or handler.request_streaming
            or handler.request_deserializer is None
            or not handler_call_details.method.startswith(self._prefixes)
        ):
            return handler
        parse = handler.request_deserializer

        def deserialize(data: bytes):
            try:
                return parse(data)
            except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError, or a bad UTF-8 error
                return _Undecodable(str(exc) or type(exc).__name__)

        async def refuse(request: _Undecodable, context) -> None:
            log.info("refused with INVALID_ARGUMENT: undecodable request (%s)", request.reason,
                     extra={"rpc": handler_call_details.method, "outcome": "INVALID_ARGUMENT"})
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, _bounded(f"the request is not a valid message: {request.reason}")
            )

        if handler.response_streaming:
            inner = handler.unary_stream

            async def stream_behaviour(request, context):
                if isinstance(request, _Undecodable):
                    await refuse(request, context)
                async for response in inner(request, context):
                    yield response

            return grpc.unary_stream_rpc_method_handler(
                stream_behaviour, request_deserializer=deserialize, response_serializer=handler.response_serializer
            )
        inner_unary = handler.unary_unary

        async def unary_behaviour(request, context):
            if isinstance(request, _Undecodable):
                await refuse(request, context)
            return await inner_unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary_behaviour, request_deserializer=deserialize, response_serializer=handler.response_serializer
        )
