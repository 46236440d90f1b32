"""MiniCPM-4 transformer with batched, left-padded prefill and decode steps over slot caches.

Parameter names follow the official checkpoint (`layers.N.self_attn.q_proj.weight`, ...), so a
real state dict loads with strict key matching. Numerics follow the official order of
operations: RMSNorm in float32, rotary embedding applied in float32, SwiGLU MLP.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import LMConfig


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.to(torch.float32).pow(2).mean(dim=-1, keepdim=True)
        return (x * torch.rsqrt(variance + self.eps)).to(x.dtype) * self.weight


class LongRoPE(nn.Module):
    """Rotary tables for every position up to max_position_embeddings, LongRoPE-scaled.

    Buffers are not persistent (the checkpoint has none) but follow the module's dtype, as the
    official model's do after `.to(dtype)`.
    """

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.head_dim
        scaling = config.rope_scaling
        scale = config.max_position_embeddings / scaling.original_max_position_embeddings
        factor = math.sqrt(1 + math.log(scale) / math.log(scaling.original_max_position_embeddings))
        inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2).float() / dim))
        long = config.max_position_embeddings > scaling.original_max_position_embeddings
        ext = torch.tensor(scaling.long_factor if long else scaling.short_factor, dtype=torch.float32)
        positions = torch.arange(config.max_position_embeddings, dtype=torch.float32)
        freqs = torch.outer(positions, 1.0 / ext) * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos_cached", emb.cos() * factor, persistent=False)
        self.register_buffer("sin_cached", emb.sin() * factor, persistent=False)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos_cached[positions], self.sin_cached[positions]


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
    dtype = q.dtype
    q, k = q.to(torch.float32), k.to(torch.float32)
    return (q * cos + _rotate_half(q) * sin).to(dtype), (k * cos + _rotate_half(k) * sin).to(dtype)


class Attention(nn.Module):
    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = config.head_dim
        hidden = config.hidden_size
        self.q_proj = nn.Linear(hidden, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(hidden, self.num_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(hidden, self.num_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, hidden, bias=False)

    def forward(self, x, rope, mask, is_causal):
        """x (B, L, H); rope (cos, sin) of (B, L, D) or None; mask (B, 1, L, L) bool or None."""
        b, length, _ = x.shape
        q = self.q_proj(x).view(b, length, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if rope is not None:
            cos, sin = rope
            q, k = apply_rope(q, k, cos.unsqueeze(1), sin.unsqueeze(1))
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=is_causal and mask is None, enable_gqa=True
        )
        out = out.transpose(1, 2).reshape(b, length, self.num_heads * self.head_dim)
        return self.o_proj(out), (k, v)

    def step(self, x, rope, cache_k, cache_v, index, mask):
        """One decode step. x (B, H); rope (cos, sin) of (B, D); row r's new key and value are
        written at position index[r] of the caches (B, kv_heads, S, D); mask (B, 1, 1, S) marks
        the keys each row attends to."""
        b = x.shape[0]
        q = self.q_proj(x).view(b, 1, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, 1, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, 1, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if rope is not None:
            cos, sin = rope
            q, k = apply_rope(q, k, cos[:, None, None, :], sin[:, None, None, :])
        # In place, at fixed addresses: the caches are preallocated slots (what a captured step needs).
        where = index.view(b, 1, 1, 1).expand(b, self.num_kv_heads, 1, self.head_dim)
        cache_k.scatter_(2, where, k)
        cache_v.scatter_(2, where, v)
        out = F.scaled_dot_product_attention(q.contiguous(), cache_k, cache_v, attn_mask=mask, enable_gqa=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, self.num_heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.self_attn = Attention(config)
        self.mlp = MLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.residual_scale = config.scale_depth / math.sqrt(config.num_hidden_layers) if config.use_mup else None

    def _add(self, residual: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return residual + (h if self.residual_scale is None else h * self.residual_scale)

    def forward(self, x, rope, mask, is_causal):
        h, kv = self.self_attn(self.input_layernorm(x), rope, mask, is_causal)
        x = self._add(x, h)
        return self._add(x, self.mlp(self.post_attention_layernorm(x))), kv

    def step(self, x, rope, cache_k, cache_v, index, mask):
        x = self._add(x, self.self_attn.step(self.input_layernorm(x), rope, cache_k, cache_v, index, mask))
        return self._add(x, self.mlp(self.post_attention_layernorm(x)))


class MiniCPMModel(nn.Module):
    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size) if config.vocab_size > 0 else None
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rope_emb = None if config.no_rope else LongRoPE(config)

    def forward(self, x: torch.Tensor, is_causal: bool) -> torch.Tensor:
        """Unpadded batch (LocEnc, LocDiT): every row has the same length, positions from 0."""
        rope = None
        if self.rope_emb is not None:
            cos, sin = self.rope_emb(torch.arange(x.shape[1], device=x.device))
            rope = (cos.unsqueeze(0), sin.unsqueeze(0))
        for layer in self.layers:
            x, _ = layer(x, rope, None, is_causal)
        return self.norm(x)

    def prefill(self, x: torch.Tensor, pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Causal pass over left-padded rows; returns the hidden states and the keys and values
        (layers, B, kv_heads, L, D). Row r's real tokens sit at [pad[r], L) with positions 0.."""
        b, length, _ = x.shape
        device = x.device
        index = torch.arange(length, device=device)
        positions = (index[None, :] - pad[:, None]).clamp(min=0)
        rope = None
        if self.rope_emb is not None:
            rope = self.rope_emb(positions)
        mask = None
        if bool((pad > 0).any()):
            causal = index[None, :] <= index[:, None]
            keys = index[None, None, :] >= pad[:, None, None]
            # A padding query sees only itself, so no row of scores is fully masked (no NaN).
            mask = (causal[None] & keys) | torch.eye(length, dtype=torch.bool, device=device)[None]
            mask = mask[:, None]
        keys, values = [], []
        for layer in self.layers:
            x, (lk, lv) = layer(x, rope, mask, True)
            keys.append(lk)
            values.append(lv)
        return self.norm(x), torch.stack(keys), torch.stack(values)

    def step(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """One token per slot at its own position `lengths[slot]`, written into the slot caches k
        and v (layers, slots, kv_heads, S, D) in place; each slot attends to its positions up to
        and including the new one. The caller advances `lengths` of the slots that count: a
        slot that sits the step out keeps its length, and its stray write at that position is
        overwritten by its next real step before anything attends to it."""
        rope = self.rope_emb(lengths) if self.rope_emb is not None else None
        index = torch.arange(k.shape[3], device=k.device)
        mask = (index[None, :] <= lengths[:, None])[:, None, None, :]
        for i, layer in enumerate(self.layers):
            x = layer.step(x, rope, k[i], v[i], lengths, mask)
        return self.norm(x)
