from __future__ import annotations

import numpy as np
import pytest

from voxbatch_server.domain import EngineParams, ReferenceAudio, SpeechTask
from voxbatch_server.engines.voxcpm.random_checkpoint import write_checkpoint


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The tiny model is all small matrices: one thread is ~10x faster than two fighting over
    a 2-core CI machine that also runs the server and the test client."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """The tiny random model in the official layout; its stop head never fires, so every row
    runs to its length cap and row lengths follow the text."""
    return write_checkpoint(tmp_path_factory.mktemp("voxcpm-tiny"))


@pytest.fixture(scope="session")
def tiny_engine(tiny_dir):
    from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine

    return VoxCPMEngine(tiny_dir, device="cpu")


def prompt_audio() -> np.ndarray:
    """Two seconds of a warbling tone at 44.1 kHz (the reference case's prompt)."""
    t = np.arange(44100 * 2) / 44100
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)


def task(text, seed=0, reference=None, stream=False, **params):
    return SpeechTask(text, "default", EngineParams(seed=seed, **params), reference, stream)


def reference(transcript="A tone sweeps. "):
    return ReferenceAudio(prompt_audio(), 44100, transcript)


@pytest.fixture(scope="session")
def tiny_v2_dir(tmp_path_factory):
    """The tiny random VoxCPM2 in the official layout (16 kHz in, 48 kHz out); never stops."""
    from voxbatch_server.engines.voxcpm.random_checkpoint import TINY_V2

    return write_checkpoint(tmp_path_factory.mktemp("voxcpm2-tiny"), TINY_V2)


@pytest.fixture(scope="session")
def tiny_v2_engine(tiny_v2_dir):
    from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine

    return VoxCPMEngine(tiny_v2_dir, device="cpu")
