"""Batched generation: left-padded prefill, per-row decoding, rows leaving as they finish.

One `generate` call runs a whole batch. Every row keeps its own seed (own generator), cfg
value, temperature, stop decision and length cap, so a row's audio does not depend on which
other rows share its batch (up to floating-point summation order).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .model import VoxCPMNetwork
from .vae_decode import decode_latents

# Patches decoded for each streamed piece, as upstream does. The decoder's receptive field is
# a little longer, so pieces differ slightly from the whole decode at their starts; a window of
# 6 patches makes them equal (see the tests).
STREAM_CONTEXT_PATCHES = 3
MIN_PATCHES = 2  # no stop before this step


@dataclass
class RowRequest:
    """One sentence to generate, tokenised and with its prompt already encoded."""

    tokens: list[int]  # prompt text + target text + the audio-start token
    prompt_feats: torch.Tensor | None  # (T, P, D) latent patches of the reference audio
    max_patches: int
    cfg_value: float = 2.0
    steps: int = 10
    temperature: float = 1.0
    seed: int = 0
    stream: bool = False


@dataclass
class RowResult:
    audio: torch.Tensor  # (N,) float32 on the CPU
    patches: torch.Tensor  # (T, P, D) generated latent patches, on the CPU
    capped: bool


@dataclass
class _Row:
    index: int
    request: RowRequest
    generator: torch.Generator
    patches: list[torch.Tensor] = field(default_factory=list)  # each (P, D)
    context: int = 0  # prompt patches prepended for decoding
    done: bool = False
    capped: bool = False


@torch.inference_mode()
def generate(
    net: VoxCPMNetwork,
    requests: Sequence[RowRequest],
    *,
    on_piece: Callable[[int, torch.Tensor], None] | None = None,
    cancelled: Callable[[int], bool] | None = None,
    stream_window: int = STREAM_CONTEXT_PATCHES,
) -> list[RowResult | None]:
    """Generate every row; `on_piece(i, samples)` receives the newest 160 ms of streaming rows
    after each step; rows for which `cancelled(i)` turns true are dropped (result None)."""
    param = next(net.base_lm.parameters())
    device, dtype = param.device, param.dtype
    patch, dim = net.config.patch_size, net.config.feat_dim
    rows = [_Row(i, r, torch.Generator(device=device).manual_seed(int(r.seed))) for i, r in enumerate(requests)]

    # -- prefill ---------------------------------------------------------------------------
    lengths = [len(r.tokens) + (0 if r.prompt_feats is None else r.prompt_feats.shape[0]) for r in requests]
    width = max(lengths)
    pad = torch.tensor([width - n for n in lengths], device=device)
    ids = torch.zeros(len(rows), width, dtype=torch.long, device=device)
    feats = torch.zeros(len(rows), width, patch, dim, dtype=dtype, device=device)
    is_text = torch.zeros(len(rows), width, dtype=torch.bool, device=device)
    is_audio = torch.zeros_like(is_text)
    for row, n in zip(rows, lengths):
        start = width - n
        tokens = torch.tensor(row.request.tokens, dtype=torch.long, device=device)
        ids[row.index, start : start + len(tokens)] = tokens
        is_text[row.index, start : start + len(tokens)] = True
        prompt = row.request.prompt_feats
        if prompt is not None and prompt.shape[0]:
            feats[row.index, width - prompt.shape[0] :] = prompt.to(device=device, dtype=dtype)
            is_audio[row.index, width - prompt.shape[0] :] = True
            row.context = min(STREAM_CONTEXT_PATCHES - 1, prompt.shape[0])
            row.patches = list(prompt[-row.context :].to(device=device, dtype=dtype))

    embeds = net.base_lm.embed_tokens(ids) * net.embed_scale
    feat_embeds = torch.zeros_like(embeds)
    if bool(is_audio.any()):
        feat_embeds[is_audio] = net.encode_patches(feats[is_audio].unsqueeze(0))[0]
    embeds = torch.where(is_audio.unsqueeze(-1), feat_embeds, torch.where(is_text.unsqueeze(-1), embeds, 0))
    capacity = width + max(r.max_patches for r in requests) + 1
    enc, lm_cache = net.base_lm.prefill(embeds, pad, capacity)
    enc = torch.where(is_audio.unsqueeze(-1), net.fsq_layer(enc), torch.where(is_text.unsqueeze(-1), enc, 0))
    res, res_cache = net.residual_lm.prefill(enc + torch.where(is_audio.unsqueeze(-1), feat_embeds, 0), pad, capacity)
    lm_hidden, res_hidden = enc[:, -1], res[:, -1]
    condition = feats[:, -1]  # (B, P, D): the last prompt patch, or zeros

    # -- steps -----------------------------------------------------------------------------
    active = list(rows)
    step = 0
    while active:
        mu = net.dit_condition(lm_hidden, res_hidden)
        noise = torch.cat(
            [
                torch.randn((1, dim, patch), generator=r.generator, device=device, dtype=dtype) * r.request.temperature
                for r in active
            ]
        )
        new = net.feat_decoder(
            mu, condition.transpose(1, 2).contiguous(), noise, active[0].request.steps,
            [r.request.cfg_value for r in active],
        ).transpose(1, 2)  # (B, P, D)
        current = net.encode_patches(new.unsqueeze(1))[:, 0]  # (B, H)
        stop = net.stop_logits(lm_hidden).argmax(dim=-1).tolist()
        for i, row in enumerate(active):
            row.patches.append(new[i])
            if step > MIN_PATCHES and stop[i] == 1:
                row.done = True
            elif step + 1 >= row.request.max_patches:
                row.done = row.capped = True
        if on_piece is not None:
            _emit_stream_pieces(net, [r for r in active if r.request.stream], on_piece, stream_window)
        keep = [
            i for i, r in enumerate(active)
            if not r.done and not (cancelled is not None and cancelled(r.index))
        ]
        if len(keep) < len(active):
            index = torch.tensor(keep, device=device, dtype=torch.long)
            lm_cache.select(index)
            res_cache.select(index)
            current, condition = current[index], new[index]
            active = [active[i] for i in keep]
        else:
            condition = new
        if not active:
            break
        positions = lm_cache.length - lm_cache.pad
        lm_hidden = net.fsq_layer(net.base_lm.step(current, positions, lm_cache))
        res_hidden = net.residual_lm.step(lm_hidden + current, positions, res_cache)
        step += 1

    # -- decode ----------------------------------------------------------------------------
    finished = [r for r in rows if r.done]
    results: list[RowResult | None] = [None] * len(rows)
    if finished:
        latents = [torch.stack(r.patches).reshape(-1, dim).T for r in finished]  # (D, T * P) each
        audios = decode_latents(net.audio_vae, latents)
        for row, audio in zip(finished, audios):
            generated = torch.stack(row.patches[row.context :]).float().cpu()
            results[row.index] = RowResult(audio[row.context * net.patch_samples :].cpu(), generated, row.capped)
    return results


def _emit_stream_pieces(net: VoxCPMNetwork, rows: list[_Row], on_piece, window: int) -> None:
    """Decode each streaming row's last few patches and hand over the newest patch's samples.
    Rows are grouped by window length: zero-padding a causal decoder on the left would change it."""
    by_window: dict[int, list[_Row]] = {}
    for row in rows:
        by_window.setdefault(min(window, len(row.patches)), []).append(row)
    dim = net.config.feat_dim
    for window, group in by_window.items():
        latents = torch.stack([torch.stack(r.patches[-window:]).reshape(-1, dim).T for r in group])
        audio = net.audio_vae.decode(latents.float())[:, 0, -net.patch_samples :]
        for row, samples in zip(group, audio):
            on_piece(row.index, samples.cpu())
