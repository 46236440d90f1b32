"""Memory estimates of a padded VoxCPM batch, from the model's own shapes.

What a batch adds on top of the weights: the KV caches of both LMs (fixed-capacity slot caches:
every slot of the batch's row bucket, for the capacity class its longest row needs, see slots.py), the prefill activations (including attention scores when attention is not
fused), the per-step activations of the DiT over both guidance branches, and the VAE decode of
each row's newest patch (with the few frames of causal state carried in front of it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import VoxCPMConfig
from .slots import bucket_for, capacity_for, row_buckets

# Live float tensors per element of a layer's widest activation during a forward pass
# (input, output, the SwiGLU pair, norms), measured as a multiple of the widest tensor.
ACTIVATION_FACTOR = 4
# The VAE decoder keeps several tensors of each stage alive (Snake's temporaries, residuals):
# measured peak growth on the CPU is 5-6 times the stage tensors themselves (a count of one input
# and one output per layer, as in the usual 60-75 MB per second figure, undercounts it).
VAE_FACTOR = 6
FIXED_BYTES = 64 << 20  # allocator slack, tokenizer and bookkeeping
# Latent frames of causal state that a step's decode concatenates in front of the new patch at
# the widest stages (a kernel-7 convolution at the latent rate; dilated ones after upsampling).
CARRIED_FRAMES = 8


@dataclass(frozen=True)
class RowShape:
    prefill: int  # tokens + audio-start + prompt patches
    max_patches: int


class MemoryModel:
    def __init__(self, config: VoxCPMConfig, dtype_bytes: int, fused_attention: bool, max_rows: int = 64) -> None:
        self.config = config
        self.max_rows = max_rows  # the batcher's max batch size: the largest bucket
        self.dtype_bytes = dtype_bytes
        self.fused_attention = fused_attention
        lm = config.lm_config
        layers = lm.num_hidden_layers + config.residual_lm_num_layers
        self.kv_bytes_per_position = 2 * layers * lm.num_key_value_heads * lm.head_dim * dtype_bytes
        vae = config.audio_vae_config
        floats_per_frame = vae.decoder_dim + sum(
            (vae.decoder_dim // 2 ** (i + 1)) * math.prod(vae.decoder_rates[: i + 1]) for i in range(len(vae.decoder_rates))
        )
        self.vae_bytes_per_frame = floats_per_frame * 4 * VAE_FACTOR

    def batch_bytes(self, rows: list[RowShape]) -> int:
        if not rows:
            return 0
        cfg, lm = self.config, self.config.lm_config
        b = len(rows)
        width = max(r.prefill for r in rows)
        positions = max(r.prefill + r.max_patches for r in rows) + 1
        slots = bucket_for(b, row_buckets(self.max_rows))
        kv = slots * capacity_for(positions, lm.max_position_embeddings) * self.kv_bytes_per_position
        widest = max(lm.intermediate_size * 2, lm.hidden_size * 4)
        prefill = b * width * widest * self.dtype_bytes * ACTIVATION_FACTOR
        if not self.fused_attention:
            prefill += b * lm.num_attention_heads * width * width * 4
        dit = cfg.dit_config
        dit_tokens = 2 * b * (1 + 2 * cfg.patch_size)
        step = dit_tokens * max(dit.ffn_dim * 2, dit.hidden_dim * 4) * self.dtype_bytes * ACTIVATION_FACTOR
        vae = b * (cfg.patch_size + CARRIED_FRAMES) * self.vae_bytes_per_frame
        return FIXED_BYTES + kv + max(prefill, step + vae)

    def vae_bytes_per_second(self) -> float:
        frames_per_second = self.config.audio_vae_config.sample_rate / math.prod(self.config.audio_vae_config.encoder_rates)
        return self.vae_bytes_per_frame * frames_per_second
