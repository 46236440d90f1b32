"""Who the scheduler's fair share and per-caller cap count a call against."""

from __future__ import annotations

from voxbatch_server.auth.caller import Caller, reset_caller, set_caller
from voxbatch_server.grpc_api.identity import caller_identity


class Context:
    def __init__(self, peer="ipv4:10.0.0.7:51234", **metadata):
        self._peer = peer
        self._metadata = tuple((k.replace("_", "-"), v) for k, v in metadata.items())

    def peer(self):
        return self._peer

    def invocation_metadata(self):
        return self._metadata


def test_the_client_header_names_the_caller_else_its_address_without_the_port():
    assert caller_identity(Context(x_voxbatch_client="app-7")) == "client:app-7"
    assert caller_identity(Context(x_voxbatch_client="  ")) == "peer:10.0.0.7"
    # Two connections from one machine are one caller.
    assert caller_identity(Context("ipv4:10.0.0.7:40000")) == caller_identity(Context("ipv4:10.0.0.7:40001"))
    assert caller_identity(Context("ipv6:[::1]:5000")) == "peer:::1"


def test_behind_a_trusted_proxy_the_forwarded_address_counts():
    proxied = Context("ipv4:172.18.0.2:40000", x_forwarded_for="203.0.113.9, 198.51.100.4")
    assert caller_identity(proxied) == "peer:172.18.0.2"
    assert caller_identity(proxied, trust_forwarded_for=True) == "peer:198.51.100.4"


def test_an_api_key_wins_over_what_the_client_claims():
    token = set_caller(Caller("k1", "team-a"))
    try:
        assert caller_identity(Context(x_voxbatch_client="someone-else")) == "key:k1"
    finally:
        reset_caller(token)
