"""Every server setting, in one typed object filled from CLI flags and VOXBATCH_* variables.

Precedence: command-line flag, then environment variable, then default. Nothing reads the
environment at import time; `Settings.load` is called once at start-up and validates everything.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .text import max_work_items

ENV_PREFIX = "VOXBATCH_"
ENGINES = ("piper", "voxcpm")


class SettingsError(ValueError):
    """A setting is invalid; the message says which and what is accepted."""


class StartupError(RuntimeError):
    """The server cannot start with valid settings (a port in use, a model folder of the wrong
    kind, a device that is not there); the message says why and what to do."""


def _setting(default: Any, help: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class Settings:
    host: str = _setting(
        "127.0.0.1",
        "Address to listen on. Another than loopback needs --api-keys-file (or --allow-unauthenticated).",
    )
    port: int = _setting(50051, "gRPC port.")
    engine: str = _setting("piper", "Engine: piper (the embedded default voice) or voxcpm.", choices=ENGINES)
    model_dir: Path | None = _setting(None, "Model folder: a VoxCPM checkpoint for --engine voxcpm.")
    device: str = _setting("auto", "Where the engine runs: auto, cpu or cuda.", choices=("auto", "cpu", "cuda"))
    dtype: str = _setting(
        "auto", "VoxCPM weights: auto (bfloat16 on a GPU, float32 on a CPU), float32, bfloat16 or float16.",
        choices=("auto", "float32", "bfloat16", "float16"),
    )
    batch_window_ms: int = _setting(50, "How long a request may wait for company while a batch runs (10-100 ms).")
    max_batch_size: int = _setting(8, "Most work items in one batch (1-256).")
    max_queue_size: int = _setting(256, "Most work items waiting; more are refused with RESOURCE_EXHAUSTED.")
    workers: int = _setting(
        0, "Batches that may run at the same time (1-16); 0: the engine's choice (2 for Piper on a CPU with two "
        "cores or more, each batch then on its share of the cores; 1 otherwise).",
    )
    # -- scheduling (issue 10): see the README's "How the scheduler decides" -----------------
    scheduler: str = _setting(
        "streaming", "streaming: admit rows by each stream's slack against its playback; greedy: every "
        "compatible waiting row joins a running batch.", choices=("streaming", "greedy"),
    )
    stream_margin_ms: int = _setting(320, "Slack (audio ahead of playback) every started stream keeps before more rows are admitted (0-10000 ms).")
    batch_window_mode: str = _setting(
        "adaptive", "adaptive: wait for company only while expected arrivals pay for the wait (10 ms up to "
        "--batch-window-ms); fixed: always --batch-window-ms.", choices=("adaptive", "fixed"),
    )
    fair_slowdown: float = _setting(
        1.5, "A caller with more rows in a batch than another active caller grows only while the lighter "
        "caller's rows step at most this many times slower than one row alone, by the measured cost (1-100; "
        "0 turns the protection off, leaving fair-share order only).",
    )
    max_queued_per_caller: int = _setting(64, "Most work items (sentences) one caller may have queued; more are refused with RESOURCE_EXHAUSTED; 0 (or --max-queue-size and above): no cap of its own.")
    memory_budget_mb: int = _setting(2048, "Memory budget of running batches on a CPU, in MiB.")
    gpu_memory_fraction: float = _setting(0.8, "Share of free GPU memory (after loading) the batches may use.")
    max_text_chars: int = _setting(5000, "Longest accepted text, in characters.")
    max_sentence_chars: int = _setting(400, "Longer sentences are cut at clause punctuation or spaces.")
    work_item_chars: int = _setting(
        200, "Short sentences are grouped into work items of up to this many characters (the engines' preferred length)."
    )
    max_reference_seconds: float = _setting(30.0, "Longest accepted voice-cloning reference clip, in seconds.")
    cache_mb: int = _setting(256, "Size of the in-memory result cache in MiB; 0 turns it off.")
    shutdown_grace_s: float = _setting(30.0, "On SIGTERM, how long in-flight work may take to finish.")
    log_level: str = _setting("info", "Log level.", choices=("debug", "info", "warning", "error"))
    log_json: bool = _setting(False, "Log one JSON object per line.")
    piper_batch_mode: str = _setting("auto", "Piper: padded (one ONNX pass), rows, or auto.", choices=("auto", "padded", "rows"))
    # -- operations: metrics and the shared cache ---------------------------------------------
    metrics_port: int = _setting(9464, "Port of the Prometheus /metrics endpoint (HTTP, on --host); 0 turns it off.")
    redis_url: str = _setting(
        "", "Redis holding the result cache, shared by replicas (redis://host:6379/0); empty: the in-memory cache."
    )
    redis_ttl_s: int = _setting(86400, "How long Redis keeps a cached sentence, in seconds.")
    # -- security: keys, TLS, what is logged and exposed (README, "Security") -----------------------
    api_keys_file: Path | None = _setting(
        None, "API keys file (voxbatch keys create); every call then needs 'authorization: Bearer <key>'."
    )
    allow_unauthenticated: bool = _setting(
        False, "Serve without keys on an address other than loopback (anyone who reaches the port may use it)."
    )
    reflection: bool = _setting(True, "Serve gRPC reflection (it needs a valid key when keys are on).")
    auth_failure_limit: int = _setting(
        20, "Failed authentications one address may make per --auth-failure-window-s before it is refused; 0 = no limit."
    )
    auth_failure_window_s: float = _setting(60.0, "Window of --auth-failure-limit, in seconds.")
    trust_forwarded_for: bool = _setting(
        False, "Take the caller's address from x-forwarded-for (only behind a proxy that sets it, such as our Envoy)."
    )
    tls_cert: Path | None = _setting(None, "TLS certificate chain (PEM) of the gRPC port; with --tls-key, the port speaks only TLS.")
    tls_key: Path | None = _setting(None, "TLS private key (PEM) of --tls-cert.")
    tls_client_ca: Path | None = _setting(None, "CA bundle (PEM): clients must present a certificate it signed (mutual TLS).")
    metrics_host: str = _setting("", "Address of the /metrics endpoint; empty: the same as --host.")
    metrics_token_file: Path | None = _setting(
        None, "File holding a token /metrics then requires as 'authorization: Bearer <token>'."
    )
    log_text_chars: int = _setting(0, "Log the first N characters of each request's text (0: texts are never logged).")
    # -- saved voices -----------------------------------------------------------------------
    voices_store: str = _setting(
        "auto", "Where saved voices live: folder (--voices-dir), redis (--redis-url, shared by replicas), "
        "or auto (redis when --redis-url is set).", choices=("auto", "folder", "redis"),
    )
    voices_dir: Path | None = _setting(None, "Folder of saved voices (default ~/.local/share/voxbatch/voices).")
    max_saved_voices: int = _setting(1000, "Most saved voices; more are refused with RESOURCE_EXHAUSTED.")
    max_voice_clip_mb: int = _setting(10, "Largest reference clip a saved voice may keep, in MiB.")
    # -- the GPU path -----------------------------------------------------------------------------
    compile: str = _setting(
        "auto", "VoxCPM: compile the whole decode step per row bucket (CUDA graphs on a GPU): auto (on with CUDA), on, off.",
        choices=("auto", "on", "off"),
    )
    compile_cache_dir: Path = _setting(
        Path("~/.cache/voxbatch/torch-compile"), "Where compiled code is kept between restarts (inductor and Triton caches)."
    )

    def __post_init__(self) -> None:
        problems = []

        def check(ok: bool, message: str) -> None:
            if not ok:
                problems.append(message)

        check(0 <= self.port <= 65535, f"port must be 0-65535 (0 picks a free port), not {self.port}")
        check(self.engine in ENGINES, f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        check(self.model_dir is None or Path(self.model_dir).is_dir(), f"model_dir {self.model_dir} is not a folder")
        check(self.engine != "voxcpm" or self.model_dir is not None, "engine voxcpm needs --model-dir (a VoxCPM checkpoint folder)")
        check(10 <= self.batch_window_ms <= 100, f"batch_window_ms must be 10-100, not {self.batch_window_ms}")
        check(1 <= self.max_batch_size <= 256, f"max_batch_size must be 1-256, not {self.max_batch_size}")
        check(1 <= self.max_queue_size <= 100_000, f"max_queue_size must be 1-100000, not {self.max_queue_size}")
        check(0 <= self.workers <= 16, f"workers must be 0 (the engine's choice) or 1-16, not {self.workers}")
        check(0 <= self.stream_margin_ms <= 10_000, f"stream_margin_ms must be 0-10000, not {self.stream_margin_ms}")
        check(self.fair_slowdown == 0 or 1 <= self.fair_slowdown <= 100,
              f"fair_slowdown must be 0 (off) or 1-100, not {self.fair_slowdown}")
        check(0 <= self.max_queued_per_caller <= 100_000, f"max_queued_per_caller must be 0-100000 (0: no cap), not {self.max_queued_per_caller}")
        check(self.memory_budget_mb >= 64, f"memory_budget_mb must be at least 64, not {self.memory_budget_mb}")
        check(0.05 <= self.gpu_memory_fraction <= 0.95, f"gpu_memory_fraction must be 0.05-0.95, not {self.gpu_memory_fraction}")
        check(1 <= self.max_text_chars <= 1_000_000, f"max_text_chars must be 1-1000000, not {self.max_text_chars}")
        check(20 <= self.max_sentence_chars <= 10_000, f"max_sentence_chars must be 20-10000, not {self.max_sentence_chars}")
        check(20 <= self.work_item_chars <= 10_000, f"work_item_chars must be 20-10000, not {self.work_item_chars}")
        if 20 <= self.work_item_chars and 1 <= self.max_text_chars:
            items = max_work_items(self.max_text_chars, self.work_item_chars)
            check(
                self.max_queue_size >= items,
                f"max_queue_size {self.max_queue_size} cannot hold the longest text: {self.max_text_chars} characters "
                f"make up to {items} work items of {self.work_item_chars} characters; raise max_queue_size to {items}, "
                "or lower max_text_chars, or raise work_item_chars",
            )
        check(1 <= self.max_reference_seconds <= 600, f"max_reference_seconds must be 1-600, not {self.max_reference_seconds}")
        check(self.cache_mb >= 0, f"cache_mb must be 0 or more, not {self.cache_mb}")
        check(self.shutdown_grace_s >= 0, f"shutdown_grace_s must be 0 or more, not {self.shutdown_grace_s}")
        check(0 <= self.metrics_port <= 65535, f"metrics_port must be 0-65535 (0 turns metrics off), not {self.metrics_port}")
        check(
            self.metrics_port == 0 or self.metrics_port != self.port,
            f"metrics_port and port must differ, both are {self.port}",
        )
        check(
            not self.redis_url or self.redis_url.startswith(("redis://", "rediss://", "unix://")),
            f"redis_url must start with redis://, rediss:// or unix://, not {self.redis_url!r}",
        )
        check(bool(self.compile_cache_dir), "compile_cache_dir must name a folder")
        check(1 <= self.redis_ttl_s <= 365 * 86400, f"redis_ttl_s must be 1-31536000, not {self.redis_ttl_s}")
        check(
            self.api_keys_file is not None or self.allow_unauthenticated or is_loopback(self.host),
            f"host {self.host} is reachable from other machines, and without --api-keys-file anyone who reaches it "
            "may use the server: give --api-keys-file (voxbatch keys create), listen on 127.0.0.1, "
            "or pass --allow-unauthenticated to accept that",
        )
        check((self.tls_cert is None) == (self.tls_key is None), "tls_cert and tls_key go together: give both or neither")
        check(self.tls_client_ca is None or self.tls_cert is not None, "tls_client_ca needs tls_cert and tls_key")
        for name in ("tls_cert", "tls_key", "tls_client_ca", "metrics_token_file"):
            value = getattr(self, name)
            check(value is None or Path(value).is_file(), f"{name} {value} is not a file")
        check(self.auth_failure_limit >= 0, f"auth_failure_limit must be 0 or more, not {self.auth_failure_limit}")
        check(self.auth_failure_window_s > 0, f"auth_failure_window_s must be positive, not {self.auth_failure_window_s}")
        check(self.log_text_chars >= 0, f"log_text_chars must be 0 or more, not {self.log_text_chars}")
        check(1 <= self.max_saved_voices <= 1_000_000, f"max_saved_voices must be 1-1000000, not {self.max_saved_voices}")
        check(1 <= self.max_voice_clip_mb <= 30, f"max_voice_clip_mb must be 1-30, not {self.max_voice_clip_mb}")
        check(
            self.voices_store != "redis" or bool(self.redis_url),
            "voices_store redis needs --redis-url (the Redis the replicas share)",
        )
        check(
            self.voices_dir is None or not Path(self.voices_dir).exists() or Path(self.voices_dir).is_dir(),
            f"voices_dir {self.voices_dir} is not a folder",
        )
        for f in fields(self):
            choices = f.metadata.get("choices")
            value = getattr(self, f.name)
            check(not choices or value in choices, f"{f.name} must be one of {', '.join(choices or ())}, not {value!r}")
        if problems:
            raise SettingsError("invalid settings:\n  " + "\n  ".join(dict.fromkeys(problems)))

    # -- loading ----------------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One --flag per field, each defaulting to 'not given' so the environment can fill it."""
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            env = ENV_PREFIX + f.name.upper()
            default = f.default if f.default is not MISSING else None
            help_text = f"{f.metadata['help']} [env {env}, default {default}]"
            if _kind(f) is bool:
                parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_text)
            else:
                parser.add_argument(flag, dest=f.name, default=None, metavar=f.name.upper(), help=help_text)

    @classmethod
    def load(cls, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        given = vars(args) if args is not None else {}
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = given.get(f.name)
            source = f"--{f.name.replace('_', '-')}"
            if raw is None and (ENV_PREFIX + f.name.upper()) in environ:
                raw = environ[ENV_PREFIX + f.name.upper()]
                source = ENV_PREFIX + f.name.upper()
            if raw is not None:
                values[f.name] = _convert(f, raw, source)
        return cls(**values)

    @classmethod
    def from_argv(cls, argv: Sequence[str], environ: Mapping[str, str] | None = None) -> Settings:
        parser = argparse.ArgumentParser()
        cls.add_arguments(parser)
        return cls.load(parser.parse_args(list(argv)), environ)

    def describe(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach."""
    import ipaddress

    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _kind(f) -> type:
    annotation = str(f.type)
    for name, kind in (("bool", bool), ("int", int), ("float", float), ("Path", Path)):
        if annotation.startswith(name):
            return kind
    return str


def _convert(f, raw: Any, source: str) -> Any:
    kind = _kind(f)
    if not isinstance(raw, str):
        return raw
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
        if kind is Path:
            return Path(raw).expanduser() if raw else None
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{source}: expected {kind.__name__}, got {raw!r}") from None
