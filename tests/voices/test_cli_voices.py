"""`voxbatch voices add|rm|ls` against a server that clones (the tone engine), run in-process."""

from __future__ import annotations

import pytest

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch.cli import main

from .helpers import clip


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerThread(ToneEngine(cloning=True), voices_dir=tmp_path_factory.mktemp("cli-voices")) as server:
        yield server


def test_voices_add_ls_rm(server, tmp_path, capsys):
    recording = tmp_path / "anna.wav"
    recording.write_bytes(clip())
    assert main(["voices", "add", "anna", "--audio", str(recording), "--text", "A tone sweeps.",
                 "--description", "Anna reads", "--language", "en", "--server", server.target]) == 0
    assert "saved voice anna (en, 1.5 s clip)" in capsys.readouterr().err

    assert main(["voices", "--server", server.target]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].startswith("tone\ten\t16000 Hz") and listing[0].endswith("(default)")
    assert listing[-1] == "anna\ten\t16000 Hz\tAnna reads [saved]"
    assert main(["voices", "ls", "--server", server.target]) == 0
    assert capsys.readouterr().out.splitlines() == listing

    assert main(["voices", "add", "anna", "--audio", str(recording), "--text", "Again.", "--server", server.target]) == 1
    assert "ALREADY_EXISTS" in capsys.readouterr().err
    assert main(["voices", "rm", "anna", "--server", server.target]) == 0
    assert main(["voices", "rm", "anna", "--server", server.target]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err
