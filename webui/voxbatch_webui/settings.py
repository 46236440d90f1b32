"""Settings of the web UI, from `voxbatch webui` flags and VOXBATCH_WEBUI_* variables.

Precedence: command-line flag, then environment variable, then default. Nothing is read at
import time, and this module imports nothing heavy, so the CLI can list the flags cheaply.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

ENV_PREFIX = "VOXBATCH_WEBUI_"


class SettingsError(ValueError):
    """A setting is invalid; the message says which and what is accepted."""


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class WebUISettings:
    server: str = _setting("localhost:50051", "Address of the voxbatch gRPC server, HOST:PORT or https://HOST[:PORT] for TLS.")
    host: str = _setting("127.0.0.1", "Address the web UI listens on (0.0.0.0: every interface; put the server behind API keys first).")
    port: int = _setting(8080, "HTTP port of the web UI.")
    title: str = _setting("voxbatch", "Name shown in the page header and the browser tab.")
    timeout_s: float = _setting(300.0, "Seconds one synthesis may take before the UI gives up.")
    refresh_s: float = _setting(2.0, "How often pages ask the server again: the server page's figures and charts, and a page waiting for the server to come up (seconds).")
    chart_minutes: float = _setting(5.0, "How many minutes of batches and requests the server page charts.")
    history_size: int = _setting(20, "Results kept in each browser session's history.")
    audio_cache_mb: int = _setting(256, "Memory for the audio the UI keeps for playback and download, in MiB.")
    max_reference_mb: int = _setting(20, "Largest reference clip a person may upload for voice cloning, in MiB.")
    storage_secret: str = _setting("", "Secret that signs the browser-session cookie (default: a random one per start).")
    ca_file: str = _setting("", "CA certificate (PEM) that signed the server's TLS certificate.")

    def __post_init__(self) -> None:
        problems = []

        def check(ok: bool, message: str) -> None:
            if not ok:
                problems.append(message)

        host, _, port = self.server.rpartition(":")
        check(
            self.server.startswith("https://") and len(self.server) > len("https://") or (bool(host) and port.isdigit()),
            f"server must be HOST:PORT or https://HOST[:PORT], not {self.server!r}",
        )
        check(0 <= self.port <= 65535, f"port must be 0-65535, not {self.port}")
        check(self.timeout_s > 0, f"timeout_s must be positive, not {self.timeout_s}")
        check(0.2 <= self.refresh_s <= 60, f"refresh_s must be 0.2-60, not {self.refresh_s}")
        check(0.5 <= self.chart_minutes <= 60, f"chart_minutes must be 0.5-60, not {self.chart_minutes}")
        check(1 <= self.history_size <= 200, f"history_size must be 1-200, not {self.history_size}")
        check(16 <= self.audio_cache_mb <= 65536, f"audio_cache_mb must be 16-65536, not {self.audio_cache_mb}")
        check(1 <= self.max_reference_mb <= 30, f"max_reference_mb must be 1-30, not {self.max_reference_mb}")
        if problems:
            raise SettingsError("invalid web UI settings:\n  " + "\n  ".join(problems))

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One --flag per field, each defaulting to 'not given' so the environment can fill it."""
        for f in fields(cls):
            env = ENV_PREFIX + f.name.upper()
            default = f.default if f.default is not MISSING else None
            shown = "random" if f.name == "storage_secret" else default
            parser.add_argument(
                "--" + f.name.replace("_", "-"), dest=f.name, default=None, metavar=f.name.upper(),
                help=f"{f.metadata['help']} [env {env}, default {shown}]",
            )

    @classmethod
    def load(cls, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> WebUISettings:
        environ = os.environ if environ is None else environ
        given = vars(args) if args is not None else {}
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw, source = given.get(f.name), "--" + f.name.replace("_", "-")
            if raw is None and ENV_PREFIX + f.name.upper() in environ:
                raw, source = environ[ENV_PREFIX + f.name.upper()], ENV_PREFIX + f.name.upper()
            if raw is not None:
                values[f.name] = _convert(type(f.default), raw, source)
        return cls(**values)

    @classmethod
    def from_argv(cls, argv: Sequence[str], environ: Mapping[str, str] | None = None) -> WebUISettings:
        parser = argparse.ArgumentParser(prog="voxbatch webui")
        cls.add_arguments(parser)
        return cls.load(parser.parse_args(list(argv)), environ)


def _convert(kind: type, raw: Any, source: str) -> Any:
    if not isinstance(raw, str) or kind is str:
        return raw
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{source}: expected {kind.__name__}, got {raw!r}") from None
