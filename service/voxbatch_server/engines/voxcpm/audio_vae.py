"""The causal audio VAE (encoder for prompts, decoder for output), with the official
weight-norm parameter names (`weight_g`, `weight_v`) so the checkpoint loads unchanged."""

from __future__ import annotations

import bisect
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
    def __init__(self, *args, padding: int = 0, output_padding: int = 0, **kwargs) -> None:
        nn.Conv1d.__init__(self, *args, **kwargs)
        self.causal_padding = padding * 2 - output_padding
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(F.pad(x, (self.causal_padding, 0)), self._weight(), self.bias)

    def carry_frames(self) -> int:
        return self.causal_padding

    def step(self, x: torch.Tensor, carry: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Streaming: `carry` holds the inputs that came before x (zeros at the start)."""
        full = torch.cat([carry, x], dim=-1)
        return self._conv_forward(full, self._weight(), self.bias), full[..., full.shape[-1] - self.causal_padding :]


class CausalConvTranspose1d(_WeightNorm, nn.ConvTranspose1d):
    def __init__(self, *args, padding: int = 0, output_padding: int = 0, **kwargs) -> None:
        nn.ConvTranspose1d.__init__(self, *args, **kwargs)
        self.trim = padding * 2 - output_padding
        self._init_weight_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv_transpose1d(x, self._weight(), self.bias, self.stride, 0, 0, self.groups, self.dilation)
        return out[..., : -self.trim]

    def carry_frames(self) -> int:
        return (self.kernel_size[0] - 1) // self.stride[0]

    def step(self, x: torch.Tensor, carry: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Streaming: the outputs of x alone, given the input frames before it in `carry`."""
        frames = carry.shape[-1]
        full = torch.cat([carry, x], dim=-1)
        out = F.conv_transpose1d(full, self._weight(), self.bias, self.stride, 0, 0, self.groups, self.dilation)
        return out[..., frames * self.stride[0] : -self.trim], full[..., full.shape[-1] - frames :]


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
    def __init__(self, output_dim: int, stride: int, groups: int = 1, odd_stride_trim: bool = False) -> None:
        super().__init__()
        input_dim = output_dim // 2
        self.block = nn.Sequential(
            ResidualUnit(input_dim, 1, groups),
            ResidualUnit(input_dim, 3, groups),
            ResidualUnit(input_dim, 9, groups),
            Snake1d(input_dim),
            CausalConv1d(
                input_dim, output_dim, kernel_size=2 * stride, stride=stride, padding=math.ceil(stride / 2),
                output_padding=stride % 2 if odd_stride_trim else 0,
            ),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class Encoder(nn.Module):
    def __init__(self, d_model: int, latent_dim: int, strides: list[int], depthwise: bool, odd_stride_trim: bool) -> None:
        super().__init__()
        blocks: list[nn.Module] = [CausalConv1d(1, d_model, kernel_size=7, padding=3)]
        for stride in strides:
            d_model *= 2
            blocks.append(EncoderBlock(d_model, stride, d_model // 2 if depthwise else 1, odd_stride_trim))
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
        self.input_dim = input_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class RateCondition(nn.Module):
    """AudioVAE V2: before a decoder block, x * scale + bias (or + embedding, or a concatenated
    embedding) of the output-rate bucket, optionally followed by Snake and a 1x1 convolution."""

    def __init__(self, dim: int, buckets: int, cond_type: str, cond_dim: int, out_layer: bool) -> None:
        super().__init__()
        if cond_type not in ("scale_bias", "scale_bias_init", "add", "concat"):
            raise ValueError(f"audio_vae_config.cond_type {cond_type!r} is not one of scale_bias, scale_bias_init, add, concat")
        if cond_type == "concat" and not out_layer:
            raise ValueError("audio_vae_config.cond_type 'concat' needs cond_out_layer")
        self.cond_type = cond_type
        out_in = dim
        if cond_type.startswith("scale_bias"):
            self.scale_embed = nn.Embedding(buckets, dim)
            self.bias_embed = nn.Embedding(buckets, dim)
        else:
            self.cond_embed = nn.Embedding(buckets, cond_dim if cond_type == "concat" else dim)
            out_in = dim + cond_dim if cond_type == "concat" else dim
        self.out_layer = nn.Sequential(Snake1d(out_in), CausalConv1d(out_in, dim, kernel_size=1)) if out_layer else nn.Identity()

    def forward(self, x: torch.Tensor, bucket: int) -> torch.Tensor:
        if self.cond_type.startswith("scale_bias"):
            x = x * self.scale_embed.weight[bucket].view(1, -1, 1) + self.bias_embed.weight[bucket].view(1, -1, 1)
        elif self.cond_type == "add":
            x = x + self.cond_embed.weight[bucket].view(1, -1, 1)
        else:
            embed = self.cond_embed.weight[bucket].view(1, -1, 1).expand(x.shape[0], -1, x.shape[-1])
            x = torch.cat([x, embed], dim=1)
        return self.out_layer(x)


class Decoder(nn.Module):
    def __init__(self, config: AudioVAEConfig) -> None:
        super().__init__()
        latent_dim, channels, depthwise = config.latent_dim, config.decoder_dim, config.depthwise
        if depthwise:
            layers: list[nn.Module] = [
                CausalConv1d(latent_dim, latent_dim, kernel_size=7, padding=3, groups=latent_dim),
                CausalConv1d(latent_dim, channels, kernel_size=1),
            ]
        else:
            layers = [CausalConv1d(latent_dim, channels, kernel_size=7, padding=3)]
        for i, stride in enumerate(config.decoder_rates):
            output_dim = channels // 2 ** (i + 1)
            layers.append(DecoderBlock(channels // 2**i, output_dim, stride, output_dim if depthwise else 1, config.use_noise_block))
        layers += [Snake1d(output_dim), CausalConv1d(output_dim, 1, kernel_size=7, padding=3), nn.Tanh()]
        boundaries = config.sr_bin_boundaries
        self.model = nn.Sequential(*layers)
        self.sr_cond_model: nn.ModuleList | None = None
        self.rate_bucket = 0
        if boundaries is not None:
            # Indexed like the layers (None where there is no block), as the checkpoint keys are.
            self.sr_cond_model = nn.ModuleList(
                RateCondition(layer.input_dim, len(boundaries) + 1, config.cond_type, config.cond_dim, config.cond_out_layer)
                if isinstance(layer, DecoderBlock) else None
                for layer in layers
            )
            # The bucket of the output rate (torch.bucketize's rule); the boundaries themselves
            # come from the config, so a checkpoint without that buffer still loads.
            self.rate_bucket = bisect.bisect_left(sorted(boundaries), config.output_rate)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.sr_cond_model is None:
            return self.model(z)
        for layer, condition in zip(self.model, self.sr_cond_model):
            if condition is not None:
                z = condition(z, self.rate_bucket)
            z = layer(z)
        return z

    def carries(self, batch: int, device) -> list[torch.Tensor]:
        """Zero state for streaming `batch` rows from the start: one tensor per causal layer."""
        return [
            torch.zeros(batch, m.in_channels, m.carry_frames(), device=device)
            for m in self.model.modules()
            if isinstance(m, (CausalConv1d, CausalConvTranspose1d)) and m.carry_frames() > 0
        ]

    def step(self, z: torch.Tensor, carries: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Decode the next frames of a stream, carrying every causal layer's past inputs: the
        pieces of a stream join into exactly what one decode of the whole would give."""
        incoming, outgoing = iter(carries), []
        conditions = self.sr_cond_model or [None] * len(self.model)
        for layer, condition in zip(self.model, conditions):
            if condition is not None:
                z = condition(z, self.rate_bucket)
            z = _stream(layer, z, incoming, outgoing)
        return z, outgoing


def _stream(module: nn.Module, x: torch.Tensor, incoming, outgoing: list[torch.Tensor]) -> torch.Tensor:
    if isinstance(module, (CausalConv1d, CausalConvTranspose1d)) and module.carry_frames() > 0:
        x, carry = module.step(x, next(incoming))
        outgoing.append(carry)
        return x
    if isinstance(module, ResidualUnit):
        return x + _stream(module.block, x, incoming, outgoing)
    if isinstance(module, DecoderBlock):
        return _stream(module.block, x, incoming, outgoing)
    if isinstance(module, nn.Sequential):
        for child in module:
            x = _stream(child, x, incoming, outgoing)
        return x
    return module(x)


class AudioVAE(nn.Module):
    def __init__(self, config: AudioVAEConfig) -> None:
        super().__init__()
        self.config = config
        self.latent_dim = config.latent_dim
        self.sample_rate = config.sample_rate  # of the encoder's input
        self.output_rate = config.output_rate  # of the decoder's output
        self.hop_length = math.prod(config.encoder_rates)
        self.decode_hop = math.prod(config.decoder_rates)
        self.encoder = Encoder(
            config.encoder_dim, config.latent_dim, config.encoder_rates, config.depthwise,
            odd_stride_trim=config.v2,
        )
        self.decoder = Decoder(config)

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (B, 1, N) at sample_rate -> latents (B, D, N / hop)."""
        right = math.ceil(audio.shape[-1] / self.hop_length) * self.hop_length - audio.shape[-1]
        return self.encoder(F.pad(audio, (0, right)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latents (B, D, T) -> audio (B, 1, T * decode_hop) at output_rate."""
        return self.decoder(z)
