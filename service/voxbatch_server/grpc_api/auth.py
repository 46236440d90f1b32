"""Authentication, capabilities and quotas, as one gRPC server interceptor in front of every RPC.

Order of checks on each call: the health service passes untouched (probes and Envoy's health
checks carry no key); an address with too many recent failures is refused (RESOURCE_EXHAUSTED with
RetryInfo); the key (`authorization: Bearer <key>`) must be valid (else UNAUTHENTICATED); the key
must hold the method's capability, and `clone` when the request carries reference audio (else
PERMISSION_DENIED); synthesis calls then take a slot of the key's quotas (else RESOURCE_EXHAUSTED
with RetryInfo). The statuses come from grpc_api/status.py like every other error's.

Without a keys file the interceptor lets everything through: the server then only listens on
loopback unless --allow-unauthenticated says otherwise (server.py).
"""

from __future__ import annotations

import logging
import time

import grpc

from ..auth.attempts import FailedAttempts
from ..auth.caller import Caller, reset_caller, set_caller
from ..auth.keys import ApiKey, KeyStore
from ..errors import PermissionDenied, QuotaExceeded, Unauthenticated
from . import status

log = logging.getLogger(__name__)

TTS = "/voxbatch.tts.v1.TtsService/"
HEALTH = "/grpc.health.v1.Health/"
# What each method needs. None: any valid key. A method not listed (a new RPC nobody mapped yet)
# needs `admin`: access is denied by default, not granted. Voice-management RPCs take `manage-voices`.
CAPABILITY_OF = {
    TTS + "Synthesize": "synthesize",
    TTS + "StreamSynthesize": "synthesize",
    TTS + "CreateSpeech": "synthesize",
    TTS + "ListVoices": None,
    TTS + "GetServerInfo": None,
    TTS + "GetVoice": None,
    TTS + "CreateVoice": "manage-voices",
    TTS + "DeleteVoice": "manage-voices",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": None,
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": None,
}
# Calls that run synthesis take a slot of the key's quotas; the rest are cheap reads.
QUOTA_METHODS = frozenset({TTS + "Synthesize", TTS + "StreamSynthesize", TTS + "CreateSpeech"})
RELOAD_CHECK_S = 1.0  # how often calls look whether the keys file changed


def bearer_key(metadata) -> str | None:
    for name, value in metadata or ():
        if name == "authorization":
            scheme, _, key = str(value).strip().partition(" ")
            return key.strip() if scheme.lower() == "bearer" and key.strip() else None
    return None


def peer_address(context, trust_forwarded_for: bool) -> str:
    """The caller's address without its port. Behind a proxy that appends the address it saw to
    x-forwarded-for (Envoy with use_remote_address), the last entry, when trusted."""
    if trust_forwarded_for:
        for name, value in context.invocation_metadata() or ():
            if name == "x-forwarded-for" and value.strip():
                return value.split(",")[-1].strip()
    peer = context.peer() or "unknown"
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return rest.rpartition(":")[0].strip("[]") or rest
    return peer


# Request fields that carry someone's recorded voice: sending any of them needs `clone`.
VOICE_AUDIO_FIELDS = ("reference", "prompt")


def _wants_clone(request) -> bool:
    has_field = getattr(request, "HasField", None)
    if has_field is None:
        return False
    for name in VOICE_AUDIO_FIELDS:
        try:
            if has_field(name):
                return True
        except ValueError:  # a message without that field
            continue
    return False


class Authorization(grpc.aio.ServerInterceptor):
    def __init__(self, keys: KeyStore | None, quotas, attempts: FailedAttempts, *,
                 trust_forwarded_for: bool = False, metrics=None) -> None:
        self.keys = keys
        self.quotas = quotas
        self.attempts = attempts
        self.trust_forwarded_for = trust_forwarded_for
        self.metrics = metrics
        self._checked_at = time.monotonic()

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or self.keys is None or method.startswith(HEALTH):
            return handler
        return _wrap(handler, method, self)

    # -- the checks ---------------------------------------------------------------------------

    async def _admit(self, method: str, request, context) -> ApiKey:
        self._maybe_reload()
        address = peer_address(context, self.trust_forwarded_for)
        wait = self.attempts.blocked_for(address)
        if wait > 0:
            await self._refuse(method, context, QuotaExceeded(
                f"too many failed authentication attempts from {address}; retry in {wait:.0f} s", wait))
        presented = bearer_key(context.invocation_metadata())
        if presented is None:
            self.attempts.failed(address)
            await self._refuse(method, context, Unauthenticated(
                "this server needs an API key: send the header 'authorization: Bearer <key>'"))
        key = self.keys.verify(presented)
        if key is None:
            self.attempts.failed(address)
            log.warning("refused an invalid or revoked API key from %s", address,
                        extra={"rpc": method, "outcome": "UNAUTHENTICATED"})
            await self._refuse(method, context, Unauthenticated("the API key is invalid or revoked"))
        needed = [CAPABILITY_OF[method] if method in CAPABILITY_OF else "admin"]
        if _wants_clone(request):
            needed.append("clone")
        for capability in needed:
            if capability is not None and not key.allows(capability):
                log.info("key %s lacks %s for %s", key.id, capability, method,
                         extra={"rpc": method, "outcome": "PERMISSION_DENIED", "key_id": key.id})
                await self._refuse(method, context, PermissionDenied(
                    f"API key {key.id} ({key.name}) lacks the '{capability}' capability this call needs"))
        return key

    async def _refuse(self, method: str, context, exc: Exception) -> None:
        if self.metrics is not None and method.startswith(TTS):
            code, _ = status.status_of(exc)
            self.metrics.rpc_done(method[len(TTS):], code.name)
        await status.abort(context, exc)

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked_at >= RELOAD_CHECK_S:
            self._checked_at = now
            if self.keys.changed():
                self.keys.reload()


def _wrap(handler, method: str, auth: Authorization):
    """The same handler, with the checks (and a slot of the key's quota) before the method runs."""
    quota = method in QUOTA_METHODS and auth.quotas is not None

    async def enter(request, context):
        key = await auth._admit(method, request, context)
        lease = None
        if quota and key.limits.any:
            try:
                lease = await auth.quotas.acquire(key.id, key.limits)
            except QuotaExceeded as exc:
                log.info("quota: %s", exc, extra={"key_id": key.id, "outcome": "RESOURCE_EXHAUSTED"})
                await auth._refuse(method, context, exc)
        caller = Caller(key.id, key.name)
        return caller, set_caller(caller), lease

    async def leave(caller: Caller, token, lease) -> None:
        reset_caller(token)
        if lease is not None:
            await auth.quotas.release(lease, caller.audio_seconds)

    if handler.unary_unary:
        inner = handler.unary_unary

        async def unary_unary(request, context):
            caller, token, lease = await enter(request, context)
            try:
                return await inner(request, context)
            finally:
                await leave(caller, token, lease)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if handler.unary_stream:
        inner_stream = handler.unary_stream

        async def unary_stream(request, context):
            caller, token, lease = await enter(request, context)
            try:
                async for response in inner_stream(request, context):
                    yield response
            finally:
                await leave(caller, token, lease)

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(requests, context):
            caller, token, lease = await enter(None, context)
            try:
                return await inner_su(requests, context)
            finally:
                await leave(caller, token, lease)

        return grpc.stream_unary_rpc_method_handler(
            stream_unary, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
    inner_ss = handler.stream_stream

    async def stream_stream(requests, context):
        caller, token, lease = await enter(None, context)
        try:
            async for response in inner_ss(requests, context):
                yield response
        finally:
            await leave(caller, token, lease)

    return grpc.stream_stream_rpc_method_handler(
        stream_stream, request_deserializer=handler.request_deserializer, response_serializer=handler.response_serializer)
