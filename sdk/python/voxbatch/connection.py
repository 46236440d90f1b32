"""How a client reaches a server: the channel (plaintext or TLS) and the key every call carries.

Targets: "host:port" is plaintext, "https://host[:port]" is TLS (port 443 unless given),
"http://host:port" is plaintext spelled out. A CA file (`ca_file`) verifies the server's
certificate and implies TLS; without one, TLS trusts the system's roots. `client_cert` and
`client_key` present a certificate for mutual TLS. The API key travels as
`authorization: Bearer <key>`; it is taken from VOXBATCH_API_KEY when not given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import grpc

API_KEY_ENV = "VOXBATCH_API_KEY"


@dataclass(frozen=True)
class Connection:
    address: str  # host:port as gRPC dials it
    tls: bool
    credentials: grpc.ChannelCredentials | None
    metadata: tuple[tuple[str, str], ...]  # sent with every call


def connection(
    target: str,
    *,
    api_key: str | None = None,
    ca_file: str | os.PathLike | None = None,
    client_cert: str | os.PathLike | None = None,
    client_key: str | os.PathLike | None = None,
) -> Connection:
    scheme, sep, rest = target.partition("://")
    if not sep:
        scheme, rest = "", target
    scheme = scheme.lower()
    if scheme not in ("", "http", "https"):
        raise ValueError(f"target must be host:port, http://host:port or https://host[:port], not {target!r}")
    address = rest.rstrip("/")
    tls = scheme == "https" or (scheme == "" and (ca_file is not None or client_cert is not None))
    if tls and ":" not in address.rpartition("]")[2]:
        address += ":443"
    credentials = None
    if tls:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=Path(ca_file).read_bytes() if ca_file else None,
            private_key=Path(client_key).read_bytes() if client_key else None,
            certificate_chain=Path(client_cert).read_bytes() if client_cert else None,
        )
    elif scheme == "http" and (ca_file is not None or client_cert is not None):
        raise ValueError("a CA file or client certificate needs TLS: use an https:// target")
    key = os.environ.get(API_KEY_ENV) if api_key is None else api_key
    metadata = (("authorization", f"Bearer {key.strip()}"),) if key and key.strip() else ()
    return Connection(address, tls, credentials, metadata)


def sync_channel(conn: Connection, options) -> grpc.Channel:
    if conn.credentials is not None:
        return grpc.secure_channel(conn.address, conn.credentials, options=options)
    return grpc.insecure_channel(conn.address, options=options)


def aio_channel(conn: Connection, options) -> grpc.aio.Channel:
    if conn.credentials is not None:
        return grpc.aio.secure_channel(conn.address, conn.credentials, options=options)
    return grpc.aio.insecure_channel(conn.address, options=options)
