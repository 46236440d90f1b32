"""Piper's text-to-phoneme step (espeak-ng, C code) in a child process, so that text which crashes
espeak-ng costs one refused request instead of the whole server.

espeak-ng has memory-safety bugs that plain text reaches: a long run of dotted single letters
("a.a.a.a..." past about 90 of them) overflows a stack buffer in its abbreviation check, and a
word of stacked suffixes ("s's's'..." 220 times) one in its suffix loop; either kills the process
with SIGSEGV (fixed upstream in 2026, not in the espeak-ng that piper-tts 1.8.0 bundles).
The child speaks one JSON object per line on stdin and stdout; when it crashes (SIGSEGV and the
like) or hangs on a text, that text is refused with InvalidInput and a fresh child serves the next
one. The child runs in a session of its own, so a signal to the server's process group (Ctrl-C,
systemd's stop, `kill -- -PGID`) does not reach it; the server stops it itself on close. A child
killed from outside is no fault of the text: the text is tried again on a fresh child, and a
second such death is an EngineFailure (a server fault), never InvalidInput.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
from pathlib import Path

from ..errors import EngineFailure, InvalidInput

log = logging.getLogger(__name__)

TIMEOUT_S = 30.0  # espeak-ng takes milliseconds per sentence; far longer means it is lost
# How a text kills espeak-ng: memory errors. Any other death (SIGTERM, SIGINT, SIGKILL from the
# out-of-memory killer, an exit) came from outside.
_CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL, signal.SIGFPE}


class IsolatedPhonemizer:
    """`phonemize(text)` as PiperVoice.phonemize gives it, computed in a child process."""

    def __init__(self, config_path: Path, timeout_s: float = TIMEOUT_S) -> None:
        self._config_path = str(config_path)
        self._timeout_s = timeout_s
        self._lock = threading.Lock()  # one text at a time: espeak-ng is not thread-safe anyway
        self._child: subprocess.Popen | None = None
        with self._lock:
            self._start()

    def phonemize(self, text: str) -> list[list[str]]:
        with self._lock:
            for attempt in range(2):
                reply, death = self._ask(text)
                if reply is not None:
                    break
                if death == "hang" or (isinstance(death, signal.Signals) and death in _CRASH_SIGNALS):
                    log.warning("espeak-ng failed on a text (%d characters, %s); its process was restarted",
                                len(text), _describe(death))
                    raise InvalidInput(
                        "the voice's phonemizer (espeak-ng) cannot read this text; rephrase it "
                        "(long runs of dotted letters such as 'a.b.c.d...' are a known trigger)"
                    )
                log.warning("the espeak-ng process was stopped from outside (%s); %s", _describe(death),
                            "retrying the text on a fresh one" if attempt == 0 else "giving up on this text")
            else:
                raise EngineFailure(
                    "the voice's phonemizer process (espeak-ng) was stopped from outside twice while reading "
                    "this text; the server failed, not the text: retry"
                )
            if "error" in reply:
                raise InvalidInput(f"the voice cannot read this text: {reply['error']}")
            return reply["phonemes"]

    def _ask(self, text: str) -> tuple[dict | None, object]:
        """(reply, None), or (None, how the child died: a signal, an exit code, or "hang")."""
        if self._child is None or self._child.poll() is not None:
            self._start()
        child = self._child
        try:
            child.stdin.write(json.dumps({"text": text}) + "\n")
            child.stdin.flush()
            line = _read_line(child, self._timeout_s)
        except (BrokenPipeError, OSError):
            line = None
        if line is not None:
            return json.loads(line), None
        try:
            code = child.wait(1)
        except subprocess.TimeoutExpired:
            code = None  # alive but silent: the text hung it
        self._stop()
        if code is None:
            return None, "hang"
        if code < 0:
            try:
                return None, signal.Signals(-code)
            except ValueError:
                return None, f"signal {-code}"
        return None, code

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._child = subprocess.Popen(
            [sys.executable, "-m", __name__, self._config_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, encoding="utf-8", env=env,
            start_new_session=True,  # signals to the server's process group must not kill it
        )

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.poll() is None:
            child.kill()
        child.wait(10)
        for stream in (child.stdin, child.stdout):
            try:
                stream.close()
            except OSError:
                pass


def _describe(death: object) -> str:
    if death == "hang":
        return f"no answer in {TIMEOUT_S:.0f} s"
    if isinstance(death, signal.Signals):
        return death.name
    return death if isinstance(death, str) else f"exit code {death}"


def _read_line(child: subprocess.Popen, timeout_s: float) -> str | None:
    """The child's next line, or None if it died or said nothing for timeout_s."""
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            return None
    line = child.stdout.readline()
    return line or None


def _serve(config_path: str) -> None:
    """The child: PiperVoice.phonemize for each line of input (no ONNX session is needed)."""
    from piper import PiperVoice
    from piper.config import PiperConfig

    with open(config_path, encoding="utf-8") as f:
        config = PiperConfig.from_dict(json.load(f))
    voice = PiperVoice(session=None, config=config)
    for line in sys.stdin:
        try:
            reply = {"phonemes": voice.phonemize(json.loads(line)["text"])}
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which refuses the text
            reply = {"error": f"{type(exc).__name__}: {exc}"[:200]}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve(sys.argv[1])
