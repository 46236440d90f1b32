"""The local modules: LocEnc (patch -> LM input), LocDiT with its flow-matching sampler, and
the scalar quantiser. Names follow the official checkpoint keys."""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import CfmConfig, LMConfig
from .minicpm import MiniCPMModel


class LocEnc(nn.Module):
    """Encodes each patch (P latent frames) into one vector through a CLS token."""

    def __init__(self, config: LMConfig, input_dim: int) -> None:
        super().__init__()
        self.special_token = nn.Parameter(torch.randn(1, 1, 1, config.hidden_size))
        self.in_proj = nn.Linear(input_dim, config.hidden_size, bias=True)
        self.encoder = MiniCPMModel(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, P, D) -> (B, T, H)."""
        b, t, p, _ = x.shape
        x = self.in_proj(x)
        x = torch.cat([self.special_token.expand(b, t, 1, -1), x], dim=2)
        out = self.encoder(x.reshape(b * t, p + 1, -1), is_causal=False)
        return out[:, 0, :].reshape(b, t, -1)


def sinusoidal(x: torch.Tensor, dim: int, scale: float = 1000) -> torch.Tensor:
    half = dim // 2
    freq = torch.exp(torch.arange(half, dtype=x.dtype, device=x.device) * -(math.log(10000) / (half - 1)))
    emb = scale * x.unsqueeze(1) * freq.unsqueeze(0)
    return torch.cat((emb.sin(), emb.cos()), dim=-1)


class TimestepEmbedding(nn.Module):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(size, size, bias=True)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(size, size, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class LocDiT(nn.Module):
    """Predicts the flow velocity of one patch from [mu + t, previous patch, noisy patch]
    (VoxCPM 1 / 1.5) or [mu_lm, mu_residual, t, previous patch, noisy patch] (VoxCPM2, whose
    mu is the two projections side by side)."""

    def __init__(self, config: LMConfig, channels: int, separate_time: bool = False) -> None:
        super().__init__()
        hidden = config.hidden_size
        self.hidden = hidden
        self.separate_time = separate_time
        self.in_proj = nn.Linear(channels, hidden, bias=True)
        self.cond_proj = nn.Linear(channels, hidden, bias=True)
        self.out_proj = nn.Linear(hidden, channels, bias=True)
        self.time_mlp = TimestepEmbedding(hidden)
        self.delta_time_mlp = TimestepEmbedding(hidden)
        self.decoder = MiniCPMModel(config)

    def forward(self, x, mu, t, cond, dt):
        """x (N, C, P) noisy patch; mu (N, H) or (N, k * H); t, dt (N,); cond (N, C, P')."""
        x = self.in_proj(x.transpose(1, 2).contiguous())
        cond = self.cond_proj(cond.transpose(1, 2).contiguous())
        t = self.time_mlp(sinusoidal(t, self.hidden).to(x.dtype))
        t = t + self.delta_time_mlp(sinusoidal(dt, self.hidden).to(x.dtype))
        if self.separate_time:
            head = torch.cat([mu.view(x.shape[0], -1, self.hidden), t.unsqueeze(1)], dim=1)
        else:
            head = (mu + t).unsqueeze(1)
        h = self.decoder(torch.cat([head, cond, x], dim=1), is_causal=False)
        return self.out_proj(h[:, head.shape[1] + cond.shape[1] :, :]).transpose(1, 2).contiguous()


class FlowSampler(nn.Module):
    """Euler solver of the conditional flow, with classifier-free guidance (CFG-Zero*).

    Holds the DiT as `estimator` so the checkpoint keys read feat_decoder.estimator.*.
    Every row has its own noise (own generator), temperature and guidance value, and both
    guidance branches of all rows run in one DiT call.
    """

    def __init__(self, channels: int, cfm: CfmConfig, estimator: LocDiT, mean_mode: bool = False) -> None:
        super().__init__()
        self.channels = channels
        self.estimator = estimator
        self.mean_mode = mean_mode
        self.sway_coef = 1.0

    def time_grid(self, steps: int, device, dtype) -> torch.Tensor:
        t = torch.linspace(1, 0, steps + 1, device=device, dtype=dtype)
        return t + self.sway_coef * (torch.cos(torch.pi / 2 * t) - 1 + t)

    def forward(self, mu, cond, noise, steps, cfg_values):
        """mu (B, H); cond (B, C, P); noise (B, C, P), already scaled by temperature;
        cfg_values (B,) float32, one guidance value per row. Returns the patch (B, C, P).
        No step reads a tensor back to the host, so the loop can be captured whole."""
        b = mu.shape[0]
        x = noise
        t_span = self.time_grid(steps, mu.device, mu.dtype)
        t, dt = t_span[0], t_span[0] - t_span[1]
        zero_steps = max(1, int(len(t_span) * 0.04))
        # Guidance scales in float32 and rounds once to the model's dtype: what multiplying by
        # a Python float per row (as the unbatched model does) computes, in every dtype.
        cfg = cfg_values.to(device=mu.device, dtype=torch.float32).view(b, 1, 1)
        mu_in = torch.cat([mu, torch.zeros_like(mu)], dim=0)
        cond_in = torch.cat([cond, cond], dim=0)
        for step in range(1, len(t_span)):
            if step <= zero_steps:
                velocity = torch.zeros_like(x)
            else:
                t_in = t.expand(2 * b).to(x.dtype)
                dt_in = dt.expand(2 * b).to(x.dtype) if self.mean_mode else torch.zeros(2 * b, device=x.device, dtype=x.dtype)
                out = self.estimator(torch.cat([x, x], dim=0), mu_in, t_in, cond_in, dt_in)
                positive, negative = out[:b], out[b:]
                pos_flat, neg_flat = positive.reshape(b, -1), negative.reshape(b, -1)
                st = (pos_flat * neg_flat).sum(dim=1, keepdim=True) / ((neg_flat**2).sum(dim=1, keepdim=True) + 1e-8)
                st = st.view(b, 1, 1)
                guided = ((positive - negative * st).float() * cfg).to(x.dtype)
                velocity = negative * st + guided
            x = x - dt * velocity
            t = t - dt
            if step < len(t_span) - 1:
                dt = t - t_span[step + 1]
        return x


class ScalarQuantizer(nn.Module):
    """tanh bottleneck rounded to multiples of 1/scale (the FSQ layer)."""

    def __init__(self, dim: int, latent_dim: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.in_proj = nn.Linear(dim, latent_dim)
        self.out_proj = nn.Linear(latent_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.tanh(self.in_proj(x))
        return self.out_proj(torch.round(h * self.scale) / self.scale)
