"""Keys files and certificates for the security tests, made at test time: keys with the real
`voxbatch keys` code, certificates with the `cryptography` library (a CA, a server certificate for
127.0.0.1 and localhost, a client certificate, and a second CA nobody trusts)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from voxbatch_server.auth.keys import ApiKey, KeyLimits, digest, new_key, read_keys, utc_now, write_keys


def add_key(path: Path, name: str, capabilities=("synthesize",), **limits) -> tuple[str, str]:
    """Adds a key to the keys file (created if missing); returns (id, key)."""
    keys = read_keys(path) if path.exists() else []
    key_id, secret = new_key()
    keys.append(ApiKey(key_id, name, frozenset(capabilities), digest(secret), KeyLimits(**limits), utc_now()))
    write_keys(path, keys)
    return key_id, secret


def revoke_key(path: Path, key_id: str) -> None:
    from dataclasses import replace

    write_keys(path, [replace(k, revoked=utc_now()) if k.id == key_id else k for k in read_keys(path)])


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing the server trusts
    other_client_cert: Path  # a client certificate signed by other_ca
    other_client_key: Path


def make_pki(folder: Path) -> Pki:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def write_key(key, path: Path) -> Path:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        return path

    def write_cert(cert, path: Path) -> Path:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return path

    def ca(common: str):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder().subject_name(name(common)).issuer_name(name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def leaf(common: str, issuer_key, issuer_cert, server: bool):
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder().subject_name(name(common)).issuer_name(issuer_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        return key, builder.sign(issuer_key, hashes.SHA256())

    folder.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = ca("voxbatch test CA")
    other_key, other_cert = ca("somebody else's CA")
    server_key, server_cert = leaf("localhost", ca_key, ca_cert, server=True)
    client_key, client_cert = leaf("test client", ca_key, ca_cert, server=False)
    stranger_key, stranger_cert = leaf("stranger", other_key, other_cert, server=False)
    return Pki(
        ca=write_cert(ca_cert, folder / "ca.pem"),
        server_cert=write_cert(server_cert, folder / "server.pem"),
        server_key=write_key(server_key, folder / "server-key.pem"),
        client_cert=write_cert(client_cert, folder / "client.pem"),
        client_key=write_key(client_key, folder / "client-key.pem"),
        other_ca=write_cert(other_cert, folder / "other-ca.pem"),
        other_client_cert=write_cert(stranger_cert, folder / "stranger.pem"),
        other_client_key=write_key(stranger_key, folder / "stranger-key.pem"),
    )
