"""Who is calling: the key the scheduler's fair share and per-caller cap count by."""

from __future__ import annotations

from ..auth.caller import current_key_id
from .auth import peer_address

CLIENT_HEADER = "x-voxbatch-client"  # Envoy forwards it from REST requests as gRPC metadata
MAX_CALLER_CHARS = 128


def caller_identity(context, trust_forwarded_for: bool = False) -> str:
    """The authenticated API key's id when keys are on (a caller cannot claim another's share by
    sending a header), else the caller's `x-voxbatch-client` metadata, else its address without
    the port (one machine with several connections is one caller; behind Envoy, with
    --trust-forwarded-for, the client's address rather than the proxy's)."""
    key_id = current_key_id()
    if key_id is not None:
        return "key:" + key_id
    for key, value in context.invocation_metadata() or ():
        if key == CLIENT_HEADER and value.strip():
            return "client:" + value.strip()[:MAX_CALLER_CHARS]
    return "peer:" + peer_address(context, trust_forwarded_for)
