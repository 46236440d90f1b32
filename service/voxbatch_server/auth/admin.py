"""`voxbatch keys create|list|revoke`: manage the keys file a server reads (--api-keys-file).

A running server picks the change up by itself (it watches the file; SIGHUP makes it reread at once).
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from .keys import CAPABILITIES, ApiKey, KeyLimits, KeysFileError, digest, new_key, read_keys, utc_now, write_keys

FILE_ENV = "VOXBATCH_API_KEYS_FILE"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="keys_action", required=True)

    def with_file(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument("--file", default=None, help=f"the keys file (default: ${FILE_ENV})")
        return sub

    create = with_file(actions.add_parser("create", help="add a key; prints it once, on the last line"))
    create.add_argument("--name", required=True, help="who or what the key is for")
    create.add_argument("--capability", action="append", choices=CAPABILITIES, dest="capabilities",
                        help="what the key may do (repeat it; default: synthesize)")
    create.add_argument("--concurrent", type=int, default=0, help="requests at once (0 = no limit)")
    create.add_argument("--per-minute", type=int, default=0, help="requests per minute (0 = no limit)")
    create.add_argument("--audio-seconds-per-day", type=float, default=0.0, help="seconds of audio per UTC day (0 = no limit)")
    with_file(actions.add_parser("list", help="list the keys (never the keys themselves: they are not stored)"))
    revoke = with_file(actions.add_parser("revoke", help="revoke a key by its id"))
    revoke.add_argument("key_id")


def run(args: argparse.Namespace) -> int:
    path = args.file or os.environ.get(FILE_ENV)
    if not path:
        print(f"voxbatch keys: give --file or set {FILE_ENV}", file=sys.stderr)
        return 2
    path = Path(path)
    try:
        return {"create": _create, "list": _list, "revoke": _revoke}[args.keys_action](path, args)
    except (KeysFileError, ValueError) as error:
        print(f"voxbatch keys: {error}", file=sys.stderr)
        return 2


def _create(path: Path, args: argparse.Namespace) -> int:
    keys = read_keys(path) if path.exists() else []
    limits = KeyLimits(args.concurrent, args.per_minute, args.audio_seconds_per_day)
    key_id, secret = new_key()
    while any(k.id == key_id for k in keys):
        key_id, secret = new_key()
    entry = ApiKey(key_id, args.name, frozenset(args.capabilities or ["synthesize"]), digest(secret), limits, utc_now())
    write_keys(path, [*keys, entry])
    print(f"created key {key_id} ({args.name}), capabilities {', '.join(sorted(entry.capabilities))}, in {path}")
    print("it is shown this once; only its SHA-256 digest is stored:")
    print(secret)
    return 0


def _list(path: Path, args: argparse.Namespace) -> int:
    print("id\tname\tcapabilities\tconcurrent\tper_minute\taudio_s_per_day\tcreated\tstate")
    for k in read_keys(path):
        state = f"revoked {k.revoked}" if k.revoked else "active"
        l = k.limits
        print(f"{k.id}\t{k.name}\t{','.join(sorted(k.capabilities))}\t{l.concurrent}\t{l.per_minute}\t"
              f"{l.audio_seconds_per_day:g}\t{k.created}\t{state}")
    return 0


def _revoke(path: Path, args: argparse.Namespace) -> int:
    keys = read_keys(path)
    if not any(k.id == args.key_id for k in keys):
        print(f"voxbatch keys: no key {args.key_id} in {path}", file=sys.stderr)
        return 1
    write_keys(path, [replace(k, revoked=k.revoked or utc_now()) if k.id == args.key_id else k for k in keys])
    print(f"revoked {args.key_id}; servers reading {path} refuse it within a second or two (or at once on SIGHUP)")
    return 0
