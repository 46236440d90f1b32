"""A compile cache broken by a process killed mid-compile does not stop the next start.

No real compile runs here (one costs CI half a minute): `compile_decode_step` is replaced by
one that fails the way a truncated cache fails (loading a cut-short `main.so`, the real loader's
error) while the cache folder it is given is the broken one, and otherwise builds the step as
start-up does. What is checked is the start-up's handling: the retry, its folder, what later
restarts use, and the failure paths of `on` and `auto`. test_compiled_step.py compiles for real.
"""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path

import pytest

from voxbatch_server.engines.voxcpm import compiled as compiled_step
from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine


@pytest.fixture
def net(tiny_dir):
    return VoxCPMEngine(tiny_dir, device="cpu").model.network


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A compile cache holding a truncated main.so; the cache variables restored afterwards."""
    for name in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    folder = tmp_path / "torch-compile"
    (folder / "ab").mkdir(parents=True)
    (folder / "ab" / "main.so").write_bytes(b"\x7fELF\x02\x01")  # what a kill mid-write leaves
    return folder


def compile_with(monkeypatch, cache: Path, fails) -> list[Path]:
    """Make compiling fail, by loading the cache's truncated main.so, in every cache folder for
    which `fails(folder)` holds; returns the folders it compiled in."""
    used = []

    def compile_decode_step(net, device, max_rows, steps):
        folder = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
        used.append(folder)
        if fails(folder):
            ctypes.CDLL(str(cache / "ab" / "main.so"))  # raises OSError: ... file too short
        step = compiled_step.CompiledStep(net, (max_rows,), steps, cuda=False)  # torch.compile is lazy
        net.compiled_step = step
        return step

    monkeypatch.setattr(compiled_step, "compile_decode_step", compile_decode_step)
    return used


def test_a_broken_cache_is_retried_in_a_fresh_folder_which_later_starts_reuse(net, cache, monkeypatch, caplog):
    used = compile_with(monkeypatch, cache, fails=lambda folder: folder == cache)
    with caplog.at_level(logging.WARNING):
        step = compiled_step.prepare_decode_step(net, "cpu", "on", 4, cache)
    assert step is not None and net.compiled_step is step
    assert used[0] == cache and len(used) == 2
    fresh = used[1]
    assert fresh.parent == cache and fresh.name.startswith("fresh-")
    assert os.environ["TRITON_CACHE_DIR"] == str(fresh / "triton")  # Triton's cache moves too
    assert "file too short" in caplog.text and f"compile cache in {cache} " in caplog.text and str(fresh) in caplog.text
    # The next start compiles in the fresh folder straight away, not in the broken one again.
    used.clear()
    assert compiled_step.prepare_decode_step(net, "cpu", "on", 4, cache) is not None
    assert used == [fresh]


def test_a_second_failure_stops_on_and_serves_eager_with_auto(net, cache, monkeypatch, caplog):
    # Every folder fails: the broken one, and the fresh one too (as when the fault is elsewhere).
    used = compile_with(monkeypatch, cache, fails=lambda folder: True)
    with pytest.raises(compiled_step.CompileFailed, match="--compile on: compiling the decode step failed: .*file too short"):
        compiled_step.prepare_decode_step(net, "cpu", "on", 4, cache)
    assert len(used) == 2 and net.compiled_step is None
    assert not used[1].exists() and not (cache / compiled_step.ACTIVE_FILE).exists()  # no litter, no pointer
    with caplog.at_level(logging.WARNING):
        assert compiled_step.prepare_decode_step(net, "cuda", "auto", 4, cache) is None  # auto compiles with CUDA only
    assert "serving eager instead" in caplog.text
