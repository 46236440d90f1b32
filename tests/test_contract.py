"""The protobuf contract: buf lint (STANDARD), no breaking change, generated code up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = ROOT / "scripts" / "proto.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROTO), *args], cwd=ROOT, capture_output=True, text=True)


def test_buf_lint_and_breaking_pass():
    result = run("lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_generated_python_code_is_up_to_date():
    result = run("check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_rpc_has_an_http_annotation():
    from google.api import annotations_pb2

    from voxbatch.tts.v1 import tts_pb2

    service = tts_pb2.DESCRIPTOR.services_by_name["TtsService"]
    for method in service.methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        assert rule.WhichOneof("pattern") in ("get", "post", "delete"), method.name
