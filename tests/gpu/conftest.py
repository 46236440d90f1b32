"""Tests only a GPU can answer: bfloat16 against float32, CUDA generators, the free-memory
budget, a real out-of-memory error, CUDA graphs. They skip without CUDA (CI has none);
`benchmarks/gpu_check.sh` runs them first on a GPU machine.

`VOXBATCH_GPU_TESTS_DEVICE=cpu` (set by `gpu_check.sh --dry-run`) runs the ones that mean
something on a CPU too, as a rehearsal; the ones that need CUDA itself skip there as well.
"""

from __future__ import annotations

import os

import pytest

REHEARSAL_VARIABLE = "VOXBATCH_GPU_TESTS_DEVICE"


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/gpu/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.gpu)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread_on_a_cpu():
    """Rehearsing on a CPU: the tiny model's small matrices run several times faster on one
    thread than on two fighting over a busy machine."""
    import torch

    previous = torch.get_num_threads()
    if not _cuda():
        torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def device() -> str:
    """CUDA when present, else the CPU when rehearsing, else skip."""
    if _cuda():
        return "cuda"
    if os.environ.get(REHEARSAL_VARIABLE) == "cpu":
        return "cpu"
    pytest.skip("needs CUDA (benchmarks/gpu_check.sh runs these on a GPU)")


@pytest.fixture(scope="session")
def cuda_device() -> str:
    if not _cuda():
        pytest.skip("needs CUDA itself, even when rehearsing on a CPU")
    import torch

    # cuDNN's TF32 convolutions (the VAE) would blur comparisons between batch sizes.
    torch.backends.cudnn.allow_tf32 = False
    return "cuda"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from voxbatch_server.engines.voxcpm.random_checkpoint import write_checkpoint

    return write_checkpoint(tmp_path_factory.mktemp("voxcpm-tiny"))


@pytest.fixture(scope="session")
def mid_dir(tmp_path_factory):
    """Between tiny and 1.5: big enough that a batch's memory is mostly its rows."""
    from voxbatch_server.engines.voxcpm.random_checkpoint import TINY, scaled, write_checkpoint

    return write_checkpoint(tmp_path_factory.mktemp("voxcpm-mid"), scaled(TINY, hidden=512, layers=8, local_layers=2, vae_dim=512))


def task(text: str, seed: int = 0, **params):
    from voxbatch_server.domain import EngineParams, SpeechTask

    return SpeechTask(text, "default", EngineParams(seed=seed, **params))
