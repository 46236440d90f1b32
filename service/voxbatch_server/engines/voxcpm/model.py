"""The VoxCPM network: every module under the name the official checkpoint uses."""

from __future__ import annotations

import torch
from torch import nn

from .audio_vae import AudioVAE
from .config import VoxCPMConfig
from .local import FlowSampler, LocDiT, LocEnc, ScalarQuantizer
from .minicpm import MiniCPMModel

AUDIO_START_TOKEN = 101


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
            LocDiT(config.local_lm(config.dit_config), config.feat_dim),
            mean_mode=config.dit_mean_mode,
        )
        self.fsq_layer = ScalarQuantizer(lm.hidden_size, config.scalar_quantization_latent_dim, config.scalar_quantization_scale)
        self.enc_to_lm_proj = nn.Linear(config.encoder_config.hidden_dim, lm.hidden_size)
        self.lm_to_dit_proj = nn.Linear(lm.hidden_size, config.dit_config.hidden_dim)
        self.res_to_dit_proj = nn.Linear(lm.hidden_size, config.dit_config.hidden_dim)
        self.stop_proj = nn.Linear(lm.hidden_size, lm.hidden_size)
        self.stop_actn = nn.SiLU()
        self.stop_head = nn.Linear(lm.hidden_size, 2, bias=False)
        self.audio_vae = AudioVAE(config.audio_vae_config)

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    @property
    def patch_samples(self) -> int:
        """Audio samples one generation step produces."""
        return self.config.patch_size * self.audio_vae.hop_length

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
        return self.lm_to_dit_proj(lm_hidden) + self.res_to_dit_proj(residual_hidden)
