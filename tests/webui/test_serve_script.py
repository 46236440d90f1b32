"""scripts/serve.sh as a person runs it: the server and the web UI start together, the address
is printed, and Ctrl-C (SIGINT to the terminal's process group) or SIGTERM stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from voxbatch import Client, UnavailableError

from .helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 90


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has stopped; only its parent's reaping is missing


@pytest.fixture
def served():
    server_port, ui_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "NICEGUI_", "VOXBATCH_"))}
    env.update(VOXBATCH_SKIP_SETUP="1", VOXBATCH_HOST="127.0.0.1", VOXBATCH_WEBUI_HOST="127.0.0.1",
               VOXBATCH_WEBUI_PORT=str(ui_port))
    script = subprocess.Popen(
        ["bash", "scripts/serve.sh", "--port", str(server_port)], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        with Client(f"127.0.0.1:{server_port}", timeout=5) as client:
            while True:
                assert script.poll() is None, script.stdout.read()
                assert time.monotonic() < deadline, "the server and the web UI did not both start"
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/server", timeout=5) as page:
                        if page.status == 200 and client.health() == "SERVING":
                            break
                except (OSError, UnavailableError):
                    pass
                time.sleep(0.2)
        yield script, ui_port
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGKILL)
        script.wait(10)


def stops_both(script: subprocess.Popen, send) -> None:
    started = children(script.pid)
    assert len(started) == 2  # the server and the web UI
    send()
    script.wait(WAIT_S)
    for pid in started:
        for _ in range(WAIT_S * 10):
            if not running(pid):
                break
            time.sleep(0.1)
        assert not running(pid), f"process {pid} was left running"


def test_serve_starts_both_prints_the_address_and_ctrl_c_stops_both(served):
    script, ui_port = served
    stops_both(script, lambda: os.killpg(script.pid, signal.SIGINT))  # what a terminal sends on Ctrl-C
    output = script.stdout.read()
    assert f"voxbatch: web UI at http://localhost:{ui_port}" in output
    assert f"voxbatch web UI on http://127.0.0.1:{ui_port}" in output


def test_sigterm_to_the_script_stops_both(served):
    script, _ = served
    stops_both(script, lambda: script.send_signal(signal.SIGTERM))
    assert script.returncode == 143
