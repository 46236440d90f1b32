"""The VoxCPM network: every module under the name the official checkpoint uses."""

from __future__ import annotations

import torch
from torch import nn

from .audio_vae import AudioVAE
from .config import VoxCPMConfig
from .local import FlowSampler, LocDiT, LocEnc, ScalarQuantizer
from .minicpm import MiniCPMModel

AUDIO_START_TOKEN = 101
# VoxCPM2 wraps an isolated reference clip's patches in these two tokens.
REF_START_TOKEN = 103
REF_END_TOKEN = 104


class VoxCPMNetwork(nn.Module):
    def __init__(self, config: VoxCPMConfig) -> None:
        super().__init__()
        self.config = config
        lm = config.lm_config
        self.base_lm = MiniCPMModel(lm)
        self.residual_lm = MiniCPMModel(config.residual_lm())
        self.feat_encoder = LocEnc(config.local_lm(config.encoder_config), config.feat_dim)
        self.feat_decoder = FlowSampler(
            config.feat_dim,
            config.cfm_config,
            LocDiT(config.local_lm(config.dit_config), config.feat_dim, separate_time=config.is_v2),
            mean_mode=config.dit_mean_mode,
        )
        self.fsq_layer = ScalarQuantizer(lm.hidden_size, config.scalar_quantization_latent_dim, config.scalar_quantization_scale)
        self.enc_to_lm_proj = nn.Linear(config.encoder_config.hidden_dim, lm.hidden_size)
        self.lm_to_dit_proj = nn.Linear(lm.hidden_size, config.dit_config.hidden_dim)
        self.res_to_dit_proj = nn.Linear(lm.hidden_size, config.dit_config.hidden_dim)
        if config.is_v2:
            self.fusion_concat_proj = nn.Linear(2 * lm.hidden_size, lm.hidden_size)
        self.stop_proj = nn.Linear(lm.hidden_size, lm.hidden_size)
        self.stop_actn = nn.SiLU()
        self.stop_head = nn.Linear(lm.hidden_size, 2, bias=False)
        self.audio_vae = AudioVAE(config.audio_vae_config)
        # The compiled whole decode step (compiled.CompiledStep), once start-up has compiled it;
        # generation takes it for the batches it covers and runs eager otherwise.
        self.compiled_step = None

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    @property
    def is_v2(self) -> bool:
        return self.config.is_v2

    @property
    def patch_samples(self) -> int:
        """Output samples one generation step produces (at the decoder's rate)."""
        return self.config.patch_size * self.audio_vae.decode_hop

    @property
    def prompt_samples(self) -> int:
        """Input samples that encode into one patch (at the encoder's rate)."""
        return self.config.patch_size * self.audio_vae.hop_length

    @property
    def stream_context(self) -> int:
        """Prompt patches decoded in front of a continuation (then cut), as upstream does."""
        return 3 if self.is_v2 else 2

    @property
    def embed_scale(self) -> float:
        lm = self.config.lm_config
        return lm.scale_emb if lm.use_mup else 1.0

    def encode_patches(self, feats: torch.Tensor) -> torch.Tensor:
        """Patches (B, T, P, D) -> LM inputs (B, T, H)."""
        return self.enc_to_lm_proj(self.feat_encoder(feats))

    def stop_logits(self, lm_hidden: torch.Tensor) -> torch.Tensor:
        return self.stop_head(self.stop_actn(self.stop_proj(lm_hidden)))

    def dit_condition(self, lm_hidden: torch.Tensor, residual_hidden: torch.Tensor) -> torch.Tensor:
        if self.is_v2:  # two prefix tokens of the DiT, side by side
            return torch.cat([self.lm_to_dit_proj(lm_hidden), self.res_to_dit_proj(residual_hidden)], dim=-1)
        return self.lm_to_dit_proj(lm_hidden) + self.res_to_dit_proj(residual_hidden)

    def residual_input(self, lm_out: torch.Tensor, audio_embed: torch.Tensor) -> torch.Tensor:
        """The residual LM's input from the (quantised) base LM output and the audio embedding
        (zero at text positions): their sum (1.5) or a projection of both side by side (2)."""
        if self.is_v2:
            return self.fusion_concat_proj(torch.cat([lm_out, audio_embed], dim=-1))
        return lm_out + audio_embed
