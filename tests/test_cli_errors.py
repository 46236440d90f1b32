"""The `voxbatch` command when things go wrong, run as a user runs it: every problem is one clear
line on standard error and a non-zero exit status, never a traceback, and an existing output file
survives any failure."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys

import pytest
import soundfile as sf

from tests.support.engines import ToneEngine
from tests.support.net import free_port
from tests.support.server import ServerThread

VOXBATCH = [sys.executable, "-m", "voxbatch.cli"]


@pytest.fixture(scope="module")
def server():
    engine = ToneEngine(delay_s=0.2)
    with ServerThread(engine, cache_mb=0) as running:
        yield running.target, engine


def voxbatch(*args, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*VOXBATCH, *args], capture_output=True, timeout=timeout, **kwargs)


def one_clear_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """The command failed with a single line on stderr that holds every fragment."""
    err = result.stderr.decode()
    assert result.returncode != 0, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- a failed call leaves an existing output file as it was ---------------------------------------


@pytest.mark.parametrize("name, args", [
    ("unreachable server, streamed", ["Hi there.", "--server", "127.0.0.1:{dead}", "--stream", "-o", "{out}.wav", "--timeout", "5"]),
    ("unreachable server, unary", ["Hi there.", "--server", "127.0.0.1:{dead}", "-o", "{out}.wav", "--timeout", "5"]),
    ("refused stream (FLAC cannot stream)", ["Hi there.", "--server", "{server}", "--stream", "-o", "{out}.flac"]),
    ("refused unary (empty text)", ["   ", "--server", "{server}", "-o", "{out}.wav"]),
])
def test_a_failed_call_leaves_the_existing_output_file_untouched(server, tmp_path, name, args):
    out = tmp_path / "keep"
    for suffix in (".wav", ".flac"):
        out.with_suffix(suffix).write_bytes(b"keep")
    fields = {"dead": free_port(), "server": server[0], "out": out}
    result = voxbatch("say", *(a.format(**fields) for a in args))
    one_clear_line(result, "voxbatch say:")
    assert out.with_suffix(".wav").read_bytes() == out.with_suffix(".flac").read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.flac", "keep.wav"]  # no partial file left


def test_ctrl_c_during_say_is_one_line_exit_130_and_the_file_is_kept(server, tmp_path):
    out = tmp_path / "keep.wav"
    out.write_bytes(b"keep")
    text = " ".join(f"Sentence {i} takes a while to say." for i in range(100))  # 20 parts, 0.2 s each
    process = subprocess.Popen([*VOXBATCH, "say", text, "--server", server[0], "--stream", "-o", str(out)],
                               stderr=subprocess.PIPE, text=True)
    assert process.stderr.readline().startswith("part 1/")  # the stream is under way
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "voxbatch say: interrupted"
    assert out.read_bytes() == b"keep"


# -- flags that cannot work are refused before anything is sent -----------------------------------


@pytest.mark.parametrize("name, args, fragments", [
    ("missing reference", ["--reference", "{tmp}/nowhere.wav"], ["cannot read the reference recording", "nowhere.wav"]),
    ("reference text alone", ["--reference-text", "hello"], ["give --reference too"]),
    ("negative seed", ["--seed", "-1"], ["INVALID_ARGUMENT", "seed must be between 0 and"]),
    ("missing folder", ["-o", "{tmp}/no/such/folder/out.wav"], ["the folder", "does not exist"]),
    ("output is a folder", ["-o", "{tmp}"], ["is a folder"]),
    ("unknown suffix", ["-o", "{tmp}/out.xyz"], ["cannot tell the audio format", "'.xyz'", "--format"]),
])
def test_bad_flags_are_one_line_and_nothing_is_synthesized(server, tmp_path, name, args, fragments):
    target, engine = server
    before = len(engine.batches)
    result = voxbatch("say", "Hello there.", "--server", target, *(a.format(tmp=tmp_path) for a in args))
    one_clear_line(result, *fragments)
    assert len(engine.batches) == before
    assert list(tmp_path.iterdir()) == []


def test_format_overrides_an_unknown_suffix_and_dash_writes_to_standard_output(server, tmp_path):
    target, _ = server
    result = voxbatch("say", "Hello there.", "--server", target, "-o", str(tmp_path / "out.xyz"), "--format", "flac")
    assert result.returncode == 0, result.stderr
    assert sf.info(str(tmp_path / "out.xyz")).format == "FLAC"
    result = voxbatch("say", "Hello there.", "--server", target, "-o", "-")
    assert result.returncode == 0 and result.stdout[:4] == b"RIFF" and b"wrote standard output" in result.stderr


def test_length_capped_sentences_are_reported(server, tmp_path):
    target, _ = server
    for stream in ([], ["--stream"]):
        result = voxbatch("say", "A runaway sentence.", "--server", target, "-o", str(tmp_path / "capped.wav"), *stream)
        assert result.returncode == 0, result.stderr
        assert b"length cap" in result.stderr


def test_a_streamed_wav_file_gets_its_length_fields_filled_in(server, tmp_path):
    target, _ = server
    out = tmp_path / "streamed.wav"
    result = voxbatch("say", "First part here. Then a second part follows.", "--server", target, "--stream", "-o", str(out))
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    riff_size, = struct.unpack("<I", data[4:8])
    data_size, = struct.unpack("<I", data[data.index(b"data") + 4 : data.index(b"data") + 8])
    assert riff_size == len(data) - 8 and data_size == len(data) - data.index(b"data") - 8
    assert sf.info(str(out)).frames == data_size // 2
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # a new file's usual mode, not the temporary file's 0600


# -- serve: start-up problems ---------------------------------------------------------------------


def test_serve_refuses_a_port_another_server_holds(server):
    port = int(server[0].rsplit(":", 1)[1])
    result = voxbatch("serve", "--host", "127.0.0.1", "--port", str(port), "--metrics-port", "0")
    one_clear_line(result, f"cannot listen on 127.0.0.1:{port}", "in use")


def test_serve_explains_a_model_folder_of_the_wrong_kind(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    one_clear_line(voxbatch("serve", "--engine", "voxcpm", "--model-dir", str(empty), "--metrics-port", "0"),
                   "has no config.json", "not a VoxCPM checkpoint", "download-model")
    voxcpm_like = tmp_path / "voxcpm"
    voxcpm_like.mkdir()
    (voxcpm_like / "config.json").write_text("{}")
    one_clear_line(voxbatch("serve", "--engine", "piper", "--model-dir", str(voxcpm_like), "--metrics-port", "0"),
                   "has no model.onnx", "serve it with --engine voxcpm")


def test_serve_on_cuda_without_cuda_says_so():
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this machine has CUDA")
    one_clear_line(voxbatch("serve", "--device", "cuda", "--metrics-port", "0", "--port", str(free_port())),
                   "--device cuda", "no CUDA device", "--device cpu")


def test_serve_from_an_sdk_only_install_names_the_extra_to_install():
    code = "import sys; sys.modules['voxbatch_server'] = None; from voxbatch.cli import main; sys.exit(main(['serve']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, env={**os.environ})
    one_clear_line(result, "the server is not installed", "voxbatch[server]")
