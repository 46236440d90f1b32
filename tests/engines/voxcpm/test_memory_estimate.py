"""The memory estimate the batcher budgets with, against what a batch really takes on the CPU."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from voxbatch_server.engines.voxcpm.memory import MemoryModel, RowShape
import pytest

from voxbatch_server.engines.voxcpm.random_checkpoint import VOXCPM_1_5, VOXCPM_2
from voxbatch_server.engines.voxcpm.config import VoxCPMConfig


@pytest.mark.parametrize("base", ["TINY", "TINY_V2"], ids=["1.5", "2"])
def test_estimate_covers_the_measured_peak_of_a_batch(tmp_path, base):
    script = textwrap.dedent(
        f"""
        import json, torch
        def peak_rss():
            # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) parent.
            for line in open("/proc/self/status"):
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        from pathlib import Path
        torch.set_num_threads(1)
        from voxbatch_server.engines.voxcpm.random_checkpoint import write_checkpoint, scaled, TINY, TINY_V2
        from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine
        from voxbatch_server.domain import SpeechTask, EngineParams
        folder = write_checkpoint(Path({str(tmp_path)!r}) / "m", scaled({base}, hidden=256, layers=4, local_layers=2, vae_dim=256))
        engine = VoxCPMEngine(folder, device="cpu")
        text = "Numbers like 42 are read aloud, too!"
        works = [engine.prepare(SpeechTask(text, "default", EngineParams(seed=i, inference_steps=2))) for i in range(4)]
        engine.run_batch(works[:1])
        base = peak_rss()
        engine.run_batch(works)
        peak = peak_rss()
        print(json.dumps({{"measured": peak - base, "estimated": engine.memory_cost(works), "single": engine.memory_cost(works[:1])}}))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"{base}: {figures}")  # -s shows the figures
    # What the batch of 4 adds beyond the single run must fit the estimate of the 4-row batch,
    # and the estimate must not be wildly pessimistic either.
    assert figures["measured"] <= figures["estimated"] <= 4 * max(figures["measured"], figures["single"]), figures


def test_estimate_of_the_1_5_shapes_matches_the_published_figures():
    model = MemoryModel(VoxCPMConfig.from_dict(VOXCPM_1_5), dtype_bytes=2, fused_attention=True)
    assert model.kv_bytes_per_position == 16 * 1024  # 12 KiB base LM + 4 KiB residual LM
    # 33.5 MB of stage tensors per second of audio; the decoder's measured peak is ~6 times that.
    assert 150e6 <= model.vae_bytes_per_second() <= 260e6
    one_minute = RowShape(prefill=200, max_patches=375)
    assert model.batch_bytes([one_minute] * 8) > 8 * (200 + 375) * 16 * 1024


def test_estimate_of_the_voxcpm2_shapes():
    import torch

    from voxbatch_server.engines.voxcpm.model import VoxCPMNetwork

    config = VoxCPMConfig.from_dict(VOXCPM_2)
    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in VoxCPMNetwork(config).state_dict().items()}
    # Tensors whose shapes the published checkpoint is known to have.
    assert shapes["base_lm.embed_tokens.weight"] == (73448, 2048)
    assert shapes["base_lm.layers.27.self_attn.q_proj.weight"] == (2048, 2048)
    assert shapes["feat_encoder.encoder.layers.11.self_attn.q_proj.weight"] == (2048, 1024)
    assert shapes["audio_vae.decoder.sr_cond_model.7.bias_embed.weight"] == (4, 64)
    model = MemoryModel(config, dtype_bytes=2, fused_attention=True)
    # 28 base + 8 residual layers, 2 KV heads of 128 channels, keys and values, bf16.
    assert model.kv_bytes_per_position == 36 * 1024
    one_minute = RowShape(prefill=200, max_patches=375)
    eight = model.batch_bytes([one_minute] * 8)
    assert eight > 8 * (200 + 375) * 36 * 1024
    assert eight < 2 * model.batch_bytes([one_minute] * 4) < 2 * eight
