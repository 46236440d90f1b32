"""TLS on the gRPC port, with certificates made at test time: the SDK and the CLI over https://
with a CA file and a key; plaintext against the TLS port; a server certificate from a CA the client
does not trust; mutual TLS with no client certificate, the right one, and one from another CA.
Also SIGHUP rereading the keys file of a `voxbatch serve` process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.support.engines import ToneEngine
from tests.support.net import free_port, wait_until
from tests.support.security import add_key, make_pki, revoke_key
from tests.support.server import ServerThread
from voxbatch import AuthenticationError, Client, UnavailableError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory):
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    _, secret = add_key(path, "tls client", ("synthesize",))
    return path, secret


@pytest.fixture(scope="module")
def tls_server(pki, keyfile):
    with ServerThread(ToneEngine(), tls_cert=pki.server_cert, tls_key=pki.server_key, api_keys_file=keyfile[0]) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(pki, keyfile):
    with ServerThread(ToneEngine(), tls_cert=pki.server_cert, tls_key=pki.server_key, tls_client_ca=pki.ca,
                      api_keys_file=keyfile[0]) as server:
        yield server


def https(server) -> str:
    return f"https://localhost:{server.running.port}"


def test_sdk_over_tls_with_a_ca_file_and_a_key(tls_server, pki, keyfile):
    with Client(https(tls_server), ca_file=pki.ca, api_key=keyfile[1], timeout=10) as client:
        assert client.synthesize("Hello over TLS.").duration_seconds > 0
        assert [c.final for c in client.stream("One. Two.")][-1] is True
    with Client(https(tls_server), ca_file=pki.ca, api_key="", timeout=10) as client:
        with pytest.raises(AuthenticationError):  # TLS is no substitute for a key
            client.voices()


@pytest.mark.parametrize("how", ["plaintext", "untrusted-ca", "system-roots"])
def test_a_client_that_cannot_verify_the_server_gets_nothing(tls_server, pki, keyfile, how):
    target = {"plaintext": f"127.0.0.1:{tls_server.running.port}"}.get(how, https(tls_server))
    ca = {"untrusted-ca": pki.other_ca}.get(how)
    with Client(target, ca_file=ca, api_key=keyfile[1], timeout=5) as client:
        with pytest.raises(UnavailableError):
            client.voices()


def test_mutual_tls_needs_a_client_certificate_from_the_trusted_ca(mtls_server, pki, keyfile):
    with Client(https(mtls_server), ca_file=pki.ca, client_cert=pki.client_cert, client_key=pki.client_key,
                api_key=keyfile[1], timeout=10) as client:
        assert client.voices().voices
    for cert, key in ((None, None), (pki.other_client_cert, pki.other_client_key)):
        with Client(https(mtls_server), ca_file=pki.ca, client_cert=cert, client_key=key, api_key=keyfile[1], timeout=5) as client:
            with pytest.raises(UnavailableError):
                client.voices()


def test_cli_over_tls_takes_the_key_from_the_environment_or_a_file(tls_server, pki, keyfile, tmp_path):
    base = [sys.executable, "-m", "voxbatch.cli", "voices", "--server", https(tls_server), "--ca-file", str(pki.ca)]
    env = {k: v for k, v in os.environ.items() if k != "VOXBATCH_API_KEY"}
    ok = subprocess.run(base, capture_output=True, text=True, timeout=60, env={**env, "VOXBATCH_API_KEY": keyfile[1]})
    assert ok.returncode == 0 and "tone" in ok.stdout, ok.stderr
    key_file = tmp_path / "key"
    key_file.write_text(keyfile[1] + "\n")
    ok = subprocess.run([*base, "--api-key-file", str(key_file)], capture_output=True, text=True, timeout=60, env=env)
    assert ok.returncode == 0, ok.stderr
    refused = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr


def test_settings_refuse_half_a_tls_configuration(pki):
    from voxbatch_server.settings import Settings, SettingsError

    with pytest.raises(SettingsError, match="tls_cert and tls_key go together"):
        Settings(tls_cert=pki.server_cert)
    with pytest.raises(SettingsError, match="tls_client_ca needs"):
        Settings(tls_client_ca=pki.ca)


@pytest.mark.slow
def test_sighup_rereads_the_keys_file_of_a_running_server(tmp_path):
    path = tmp_path / "keys.json"
    key_id, secret = add_key(path, "first", ("synthesize",))
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    env = {**os.environ, "VOXBATCH_API_KEYS_FILE": str(path), "VOXBATCH_PORT": str(port), "VOXBATCH_METRICS_PORT": "0"}
    process = subprocess.Popen([sys.executable, "-m", "voxbatch.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        with Client(f"127.0.0.1:{port}", api_key=secret, timeout=5) as client:
            wait_until(lambda: _serving(client), 90, "voxbatch serve to answer")
            assert client.voices().voices
            revoke_key(path, key_id)
            process.send_signal(signal.SIGHUP)
            wait_until(lambda: "1 revoked" in (tmp_path / "serve.log").read_text(), 10, "the reload after SIGHUP")
            with pytest.raises(AuthenticationError):
                client.voices()
        assert process.poll() is None  # SIGHUP did not stop it
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        log.close()
    assert secret not in (tmp_path / "serve.log").read_text()


def _serving(client: Client) -> bool:
    try:
        return client.health() == "SERVING"
    except UnavailableError:
        return False
