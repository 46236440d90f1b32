"""bfloat16 weights (the GPU default) against float32, and per-row generators on the device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine
from voxbatch_server.engines.voxcpm.generate import generate

from .conftest import task

TEXTS = ["Numbers like 42.", "Hi there.", "How are you today?"]  # short: the CPU rehearsal runs them in CI
# bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%). With the same seeds, each of
# the first patches stays within 2% of float32 (relative L2 distance; 0.5-0.8% measured on a CPU)
# and the whole audio's RMS within 5% (0.03% measured). Later patches feed back into the model
# and may drift further apart, so only the first ones are compared patch by patch.
BF16_RELATIVE_TOLERANCE = 0.02
BF16_COMPARED_PATCHES = 8
BF16_RMS_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def engines(device, tiny_dir):
    return {dtype: VoxCPMEngine(tiny_dir, device=device, dtype=dtype) for dtype in ("float32", "bfloat16")}


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def test_bfloat16_stays_close_to_float32(engines):
    full, half = engines["float32"], engines["bfloat16"]
    assert half.model.dtype == torch.bfloat16 and next(half._net.audio_vae.parameters()).dtype == torch.float32
    reqs = {name: [e.prepare(task(t, seed=7)).request for t in TEXTS] for name, e in engines.items()}
    rows32 = generate(full._net, reqs["float32"])
    rows16 = generate(half._net, reqs["bfloat16"])
    for r32, r16 in zip(rows32, rows16):
        assert r16.patches.shape == r32.patches.shape and len(r16.audio) == len(r32.audio)
        assert torch.isfinite(r16.audio).all() and torch.isfinite(r16.patches.float()).all()
        for i in range(min(BF16_COMPARED_PATCHES, len(r32.patches))):
            error = relative_error(r16.patches[i], r32.patches[i])
            assert error < BF16_RELATIVE_TOLERANCE, f"patch {i}: bfloat16 is {error:.3f} away from float32 (relative)"
        rms = float(r16.audio.pow(2).mean().sqrt() / r32.audio.pow(2).mean().sqrt())
        assert abs(rms - 1) < BF16_RMS_TOLERANCE, f"bfloat16 audio RMS is {rms:.3f} of float32's"


def test_each_row_has_its_own_generator_on_the_device(engines, device):
    engine = engines["float32"]
    reqs = [engine.prepare(task(t, seed=s)).request for t, s in zip(TEXTS, (11, 22, 33))]
    batched = generate(engine._net, reqs)
    again = generate(engine._net, reqs)
    for a, b in zip(batched, again):
        assert torch.equal(a.patches, b.patches), "the same batch with the same seeds must repeat exactly"
    for req, row in zip(reqs, batched):
        alone = generate(engine._net, [req])[0]
        np.testing.assert_allclose(row.patches.numpy(), alone.patches.numpy(), atol=1e-4)
    other_seed = engine.prepare(task(TEXTS[0], seed=12)).request
    assert not np.allclose(generate(engine._net, [other_seed])[0].patches.numpy(), batched[0].patches.numpy(), atol=1e-3)
