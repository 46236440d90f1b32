"""The whole decode step captured in CUDA graphs gives the eager audio, with rows joining and
leaving the batch, moving between buckets and replaying graphs captured at start-up."""

from __future__ import annotations

import numpy as np

from voxbatch_server.engines.voxcpm import compiled as compiled_step
from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine
from voxbatch_server.engines.voxcpm.generate import generate

from .conftest import task

TEXTS = ["Numbers like 42 are read aloud, too!", "How are you today? Fine, thank you.", "Ok.", "Hi there, friend."]


def test_captured_step_equals_eager_with_rows_joining_and_leaving(cuda_device, tiny_dir, tmp_path):
    compiled_step.use_cache_dir(tmp_path / "compile-cache")
    eager = VoxCPMEngine(tiny_dir, device=cuda_device, dtype="float32")
    captured = VoxCPMEngine(tiny_dir, device=cuda_device, dtype="float32")
    result = compiled_step.compile_decode_step(captured._net, cuda_device, max_rows=4)
    assert result.mode == "cuda-graphs" and result.graphs.captures == len(result.buckets)
    reqs = [captured.prepare(task(t, seed=s)).request for t, s in zip(TEXTS, (1, 2, 3, 4))]
    calls = []

    def admit(room):
        calls.append(room)
        return reqs[2:] if len(calls) == 3 else []

    steps = []
    rows = generate(captured._net, reqs[:2], admit=admit, max_rows=4, on_step=lambda *report: steps.append(report))
    # Every step replayed a graph, and every bucket's graph (at 256 positions) was captured at start-up.
    assert captured._net.compiled_step.calls == len(steps)
    assert result.graphs.captures == len(result.buckets)
    for req, row in zip(reqs, rows):
        alone = generate(eager._net, [req])[0]
        np.testing.assert_allclose(row.patches.numpy(), alone.patches.numpy(), atol=1e-4)
        np.testing.assert_allclose(row.audio.numpy(), alone.audio.numpy(), atol=1e-4)
