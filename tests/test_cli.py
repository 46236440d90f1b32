"""The `voxbatch` command as a user runs it: serve in one process, say and voices in others."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import soundfile as sf

from tests.support.net import free_port
from voxbatch import Client
from voxbatch.errors import UnavailableError

VOXBATCH = [sys.executable, "-m", "voxbatch.cli"]


@pytest.fixture(scope="module")
def served():
    port = free_port()
    env = {**os.environ, "VOXBATCH_PORT": str(port), "VOXBATCH_MAX_BATCH_SIZE": "4"}
    process = subprocess.Popen([*VOXBATCH, "serve", "--host", "127.0.0.1"], env=env, stderr=subprocess.PIPE, text=True)
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with Client(target, timeout=5) as client:
        while True:
            try:
                if client.health() == "SERVING":
                    break
            except UnavailableError:
                pass
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
    yield target, process
    process.terminate()
    process.wait(30)


def test_say_writes_the_file_its_suffix_asks_for(served, tmp_path):
    target, _ = served
    out = tmp_path / "hello.flac"
    result = subprocess.run([*VOXBATCH, "say", "Hello from the command line.", "-o", str(out), "--server", target],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    samples, rate = sf.read(out)
    assert rate == 22050 and len(samples) > rate
    assert "wrote" in result.stderr


def test_voices_lists_the_default_voice(served):
    target, _ = served
    result = subprocess.run([*VOXBATCH, "voices", "--server", target], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "joe" in result.stdout and "(default)" in result.stdout


def test_errors_are_reported_with_their_status_and_exit_code(served, tmp_path):
    target, _ = served
    result = subprocess.run([*VOXBATCH, "say", "  ", "-o", str(tmp_path / "x.wav"), "--server", target],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "empty" in result.stderr


def test_bad_settings_stop_the_server_at_start_with_a_clear_message():
    result = subprocess.run([*VOXBATCH, "serve", "--batch-window-ms", "500"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "batch_window_ms must be 10-100, not 500" in result.stderr


def test_sigterm_drains_and_exits_cleanly(served):
    target, process = served
    with Client(target) as client:
        assert client.synthesize("One last thing before I go.").duration_seconds > 0
    process.terminate()
    assert process.wait(30) == 0
    assert "stopped" in process.stderr.read()
