"""API keys: the keys file, hashing, verification, and reloading when the file changes.

The file (JSON, `--api-keys-file`) holds, per key, an id, a name, capabilities, limits and the
SHA-256 digest of the key; never the key itself. `voxbatch keys create` makes a key, stores its
digest and prints the key once.

Why a plain SHA-256 and not a password hash (bcrypt, scrypt, argon2): the keys are 256-bit random
tokens made by `secrets`, not passwords a person chose. Nobody can guess one or search a dictionary
for it, so a slow, salted hash would add nothing but CPU time to every call; a fast digest is what
token systems (GitHub's, Stripe's) store. The digests are compared with hmac.compare_digest, which
takes the same time whether the first or the last byte differs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CAPABILITIES = ("synthesize", "clone", "manage-voices", "admin")
KEY_PREFIX = "vbx"
# A key reads vbx_<id>_<secret>: the id lets the server find the one entry to compare with, and
# tells an operator which key leaked, without being any help in forging one.
_KEY_PATTERN = re.compile(r"^vbx_([a-z0-9]{8,32})_([A-Za-z0-9_-]{32,128})$")
_ID_PATTERN = re.compile(r"^[a-z0-9]{8,32}$")
FILE_VERSION = 1


class KeysFileError(ValueError):
    """The keys file cannot be used; the message says why and where."""


@dataclass(frozen=True)
class KeyLimits:
    """Per-key quotas; 0 means no limit."""

    concurrent: int = 0
    per_minute: int = 0
    audio_seconds_per_day: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise KeysFileError(f"limit {name} must be a number 0 or more (0 = no limit), not {value!r}")

    @property
    def any(self) -> bool:
        return bool(self.concurrent or self.per_minute or self.audio_seconds_per_day)


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    capabilities: frozenset[str]
    sha256: str
    limits: KeyLimits = field(default_factory=KeyLimits)
    created: str = ""
    revoked: str = ""  # when it was revoked (UTC, ISO 8601); empty while it is valid

    def allows(self, capability: str) -> bool:
        return "admin" in self.capabilities or capability in self.capabilities

    def to_json(self) -> dict:
        entry = {
            "id": self.id, "name": self.name, "capabilities": sorted(self.capabilities),
            "limits": asdict(self.limits), "sha256": self.sha256, "created": self.created,
        }
        if self.revoked:
            entry["revoked"] = self.revoked
        return entry

    @classmethod
    def from_json(cls, entry: dict, where: str) -> ApiKey:
        try:
            key_id, name, digest = entry["id"], entry["name"], entry["sha256"]
        except (KeyError, TypeError):
            raise KeysFileError(f"{where}: each key needs id, name and sha256") from None
        if not isinstance(key_id, str) or not _ID_PATTERN.match(key_id):
            raise KeysFileError(f"{where}: id must be 8-32 lower-case letters and digits, not {key_id!r}")
        if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise KeysFileError(f"{where} ({key_id}): sha256 must be 64 hex digits")
        capabilities = entry.get("capabilities", [])
        unknown = set(capabilities) - set(CAPABILITIES)
        if unknown:
            raise KeysFileError(f"{where} ({key_id}): unknown capabilities {sorted(unknown)}; known: {', '.join(CAPABILITIES)}")
        limits = entry.get("limits") or {}
        try:
            parsed_limits = KeyLimits(**limits)
        except TypeError:
            raise KeysFileError(
                f"{where} ({key_id}): limits may be concurrent, per_minute, audio_seconds_per_day, not {sorted(limits)}"
            ) from None
        return cls(key_id, str(name), frozenset(capabilities), digest, parsed_limits,
                   str(entry.get("created", "")), str(entry.get("revoked", "")))


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh (id, key): 10 random id characters, 256 bits of secret."""
    key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


# -- the file ------------------------------------------------------------------------------------


def read_keys(path: Path) -> list[ApiKey]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KeysFileError(f"keys file {path} does not exist (create one with: voxbatch keys create --file {path} ...)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeysFileError(f"keys file {path} cannot be read: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise KeysFileError(f"keys file {path} must be a JSON object with a list 'keys'")
    keys = [ApiKey.from_json(entry, f"{path}, key {i + 1}") for i, entry in enumerate(data["keys"])]
    ids = [k.id for k in keys]
    if len(ids) != len(set(ids)):
        raise KeysFileError(f"keys file {path} has the same id twice")
    return keys


def write_keys(path: Path, keys: Iterable[ApiKey]) -> None:
    """Atomically (a temporary file renamed over the old one), readable by the owner only, so that
    a server reloading it never sees half a file."""
    path = Path(path)
    text = json.dumps({"version": FILE_VERSION, "keys": [k.to_json() for k in keys]}, indent=2) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# -- verification --------------------------------------------------------------------------------


class KeyStore:
    """The keys of one file, checked against what callers send, reloaded when the file changes.

    `reload()` is called on SIGHUP and by the server's watcher when the file's modification time,
    size or inode changes. A file that no longer parses is logged and the keys loaded before stay
    in force: a typo must not lock everybody out, nor let everybody in."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._keys: dict[str, ApiKey] = {}
        self._stamp: tuple | None = None
        self._dummy = digest(new_key()[1])
        self._load(strict=True)

    @property
    def keys(self) -> list[ApiKey]:
        return list(self._keys.values())

    def verify(self, presented: str) -> ApiKey | None:
        """The valid (not revoked) key `presented` is, or None."""
        match = _KEY_PATTERN.match(presented)
        entry = self._keys.get(match.group(1)) if match else None
        # Compare even when no entry matches, so that an unknown id costs the same as a wrong secret.
        ok = hmac.compare_digest(digest(presented), entry.sha256 if entry else self._dummy)
        if not ok or entry is None or entry.revoked:
            return None
        return entry

    def changed(self) -> bool:
        return self._file_stamp() != self._stamp

    def reload(self) -> bool:
        """Reread the file; True when the keys now in force came from it."""
        return self._load(strict=False)

    def _file_stamp(self) -> tuple | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _load(self, strict: bool) -> bool:
        with self._lock:
            stamp = self._file_stamp()
            try:
                keys = read_keys(self.path)
            except KeysFileError as exc:
                if strict:
                    raise
                self._stamp = stamp  # not again until it changes
                log.error("keys file not reloaded, the %d keys loaded before stay in force: %s", len(self._keys), exc)
                return False
            self._keys = {k.id: k for k in keys}
            self._stamp = stamp
        active = sum(1 for k in keys if not k.revoked)
        log.info("api keys loaded from %s: %d active, %d revoked", self.path, active, len(keys) - active)
        return True
