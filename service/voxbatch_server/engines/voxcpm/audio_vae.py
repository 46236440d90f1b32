"""The causal audio VAE (encoder for prompts, decoder for output), with the official
weight-norm parameter names (`weight_g`, `weight_v`) so the checkpoint loads unchanged."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import AudioVAEConfig


def _norm_except_dim0(v: torch.Tensor) -> torch.Tensor:
    return v.norm(2, dim=tuple(range(1, v.dim())), keepdim=True)


class _WeightNorm:
    """weight = g * v / |v|, computed once per forward (cheap next to the convolution)."""

    def _init_weight_norm(self) -> None:
        weight = self.weight.detach()
        del self.weight
        self.weight_g = nn.Parameter(_norm_except_dim0(weight))
        self.weight_v = nn.Parameter(weight.clone())

    def _weight(self) -> torch.Tensor:
        return self.weight_v * (self.weight_g / _norm_except_dim0(self.weight_v))


class CausalConv1d(_WeightNorm, nn.Conv1d):
    def __init__(self, *args, padding: int = 0, **kwargs) -> None:
        nn.Conv1d.__init__(self, *args, **kwargs)
        self.causal_padding = padding * 2
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(F.pad(x, (self.causal_padding, 0)), self._weight(), self.bias)


class CausalConvTranspose1d(_WeightNorm, nn.ConvTranspose1d):
    def __init__(self, *args, padding: int = 0, output_padding: int = 0, **kwargs) -> None:
        nn.ConvTranspose1d.__init__(self, *args, **kwargs)
        self.trim = padding * 2 - output_padding
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv_transpose1d(x, self._weight(), self.bias, self.stride, 0, 0, self.groups, self.dilation)
        return out[..., : -self.trim]


class Snake1d(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)


class ResidualUnit(nn.Module):
    def __init__(self, dim: int, dilation: int, groups: int = 1) -> None:
        super().__init__()
        pad = (6 * dilation) // 2
        self.block = nn.Sequential(
            Snake1d(dim),
            CausalConv1d(dim, dim, kernel_size=7, dilation=dilation, padding=pad, groups=groups),
            Snake1d(dim),
            CausalConv1d(dim, dim, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class EncoderBlock(nn.Module):
    def __init__(self, output_dim: int, stride: int, groups: int = 1) -> None:
        super().__init__()
        input_dim = output_dim // 2
        self.block = nn.Sequential(
            ResidualUnit(input_dim, 1, groups),
            ResidualUnit(input_dim, 3, groups),
            ResidualUnit(input_dim, 9, groups),
            Snake1d(input_dim),
            CausalConv1d(input_dim, output_dim, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Encoder(nn.Module):
    def __init__(self, d_model: int, latent_dim: int, strides: list[int], depthwise: bool) -> None:
        super().__init__()
        blocks: list[nn.Module] = [CausalConv1d(1, d_model, kernel_size=7, padding=3)]
        for stride in strides:
            d_model *= 2
            blocks.append(EncoderBlock(d_model, stride, groups=d_model // 2 if depthwise else 1))
        self.block = nn.Sequential(*blocks)
        self.fc_mu = CausalConv1d(d_model, latent_dim, kernel_size=3, padding=1)
        self.fc_logvar = CausalConv1d(d_model, latent_dim, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc_mu(self.block(x))


class NoiseBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = CausalConv1d(dim, dim, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.randn((x.shape[0], 1, x.shape[2]), device=x.device, dtype=x.dtype)
        return x + noise * self.linear(x)


class DecoderBlock(nn.Module):
    def __init__(self, input_dim: int, output_dim: int, stride: int, groups: int, noise: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            Snake1d(input_dim),
            CausalConvTranspose1d(
                input_dim, output_dim, kernel_size=2 * stride, stride=stride,
                padding=math.ceil(stride / 2), output_padding=stride % 2,
            ),
        ]
        if noise:
            layers.append(NoiseBlock(output_dim))
        layers += [ResidualUnit(output_dim, 1, groups), ResidualUnit(output_dim, 3, groups), ResidualUnit(output_dim, 9, groups)]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Decoder(nn.Module):
    def __init__(self, latent_dim: int, channels: int, rates: list[int], depthwise: bool, noise: bool) -> None:
        super().__init__()
        if depthwise:
            layers: list[nn.Module] = [
                CausalConv1d(latent_dim, latent_dim, kernel_size=7, padding=3, groups=latent_dim),
                CausalConv1d(latent_dim, channels, kernel_size=1),
            ]
        else:
            layers = [CausalConv1d(latent_dim, channels, kernel_size=7, padding=3)]
        for i, stride in enumerate(rates):
            output_dim = channels // 2 ** (i + 1)
            layers.append(DecoderBlock(channels // 2**i, output_dim, stride, output_dim if depthwise else 1, noise))
        layers += [Snake1d(output_dim), CausalConv1d(output_dim, 1, kernel_size=7, padding=3), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z)


class AudioVAE(nn.Module):
    def __init__(self, config: AudioVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.sample_rate = config.sample_rate
        self.hop_length = math.prod(config.encoder_rates)
        self.encoder = Encoder(config.encoder_dim, config.latent_dim, config.encoder_rates, config.depthwise)
        self.decoder = Decoder(config.latent_dim, config.decoder_dim, config.decoder_rates, config.depthwise, config.use_noise_block)

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (B, 1, N) at sample_rate -> latents (B, D, N / hop)."""
        right = math.ceil(audio.shape[-1] / self.hop_length) * self.hop_length - audio.shape[-1]
        return self.encoder(F.pad(audio, (0, right)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latents (B, D, T) -> audio (B, 1, T * hop)."""
        return self.decoder(z)
