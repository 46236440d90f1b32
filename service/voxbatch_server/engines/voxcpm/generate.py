"""Batched generation: left-padded prefill, per-row decoding, rows leaving as they finish.

One `generate` call runs a whole batch. Every row keeps its own seed (own generator), cfg
value, temperature, stop decision and length cap, so a row's audio does not depend on which
other rows share its batch (up to floating-point summation order).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from .minicpm import KVCache
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
    steps: int = 0  # patches generated so far
    peak_rows: int = 0  # most rows it shared a step with
    done: bool = False
    capped: bool = False


@dataclass
class _State:
    """The running batch: its rows and what the next step needs, one entry per active row."""

    rows: list[_Row]
    lm_cache: KVCache
    res_cache: KVCache
    lm_hidden: torch.Tensor  # (B, H)
    res_hidden: torch.Tensor  # (B, H)
    condition: torch.Tensor  # (B, P, D): the previous patch

    def keep(self, index: list[int]) -> None:
        rows = torch.tensor(index, device=self.lm_hidden.device, dtype=torch.long)
        self.lm_cache.select(rows)
        self.res_cache.select(rows)
        self.lm_hidden, self.res_hidden, self.condition = self.lm_hidden[rows], self.res_hidden[rows], self.condition[rows]
        self.rows = [self.rows[i] for i in index]

    def join(self, other: _State) -> None:
        self.lm_cache = KVCache.join(self.lm_cache, other.lm_cache)
        self.res_cache = KVCache.join(self.res_cache, other.res_cache)
        self.lm_hidden = torch.cat([self.lm_hidden, other.lm_hidden])
        self.res_hidden = torch.cat([self.res_hidden, other.res_hidden])
        self.condition = torch.cat([self.condition, other.condition])
        self.rows += other.rows


def _prefill(net: VoxCPMNetwork, rows: list[_Row]) -> _State:
    """Run the prompt of every row through both LMs, left-padded to a common width."""
    param = next(net.base_lm.parameters())
    device, dtype = param.device, param.dtype
    patch, dim = net.config.patch_size, net.config.feat_dim
    requests = [r.request for r in rows]
    lengths = [len(r.tokens) + (0 if r.prompt_feats is None else r.prompt_feats.shape[0]) for r in requests]
    width = max(lengths)
    pad = torch.tensor([width - n for n in lengths], device=device)
    ids = torch.zeros(len(rows), width, dtype=torch.long, device=device)
    feats = torch.zeros(len(rows), width, patch, dim, dtype=dtype, device=device)
    is_text = torch.zeros(len(rows), width, dtype=torch.bool, device=device)
    is_audio = torch.zeros_like(is_text)
    for i, (row, n) in enumerate(zip(rows, lengths)):
        start = width - n
        tokens = torch.tensor(row.request.tokens, dtype=torch.long, device=device)
        ids[i, start : start + len(tokens)] = tokens
        is_text[i, start : start + len(tokens)] = True
        prompt = row.request.prompt_feats
        if prompt is not None and prompt.shape[0]:
            feats[i, width - prompt.shape[0] :] = prompt.to(device=device, dtype=dtype)
            is_audio[i, width - prompt.shape[0] :] = True
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
    return _State(list(rows), lm_cache, res_cache, enc[:, -1], res[:, -1], feats[:, -1])


@torch.inference_mode()
def generate(
    net: VoxCPMNetwork,
    requests: Sequence[RowRequest],
    *,
    on_piece: Callable[[int, torch.Tensor], None] | None = None,
    cancelled: Callable[[int], bool] | None = None,
    admit: Callable[[int], Sequence[RowRequest]] | None = None,
    on_done: Callable[[int, RowResult, int], None] | None = None,
    max_rows: int | None = None,
    stream_window: int = STREAM_CONTEXT_PATCHES,
    on_step: Callable[[int, float, int, float], None] | None = None,
) -> list[RowResult | None]:
    """Generate every row and return one result per row, in order.

    `on_piece(i, samples)` receives the newest 160 ms of streaming rows after each step; rows
    for which `cancelled(i)` turns true are dropped (result None). Between steps, `admit(n)` may
    return up to n more requests (continuous batching): they are prefilled, join the running
    batch, and get the next indices; the batch never exceeds `max_rows`. Rows are decoded as
    they finish and handed to `on_done(i, result, peak_rows)` at once, so a short row does
    not wait for the rows still generating. `on_step(rows, seconds, joined, joined_s)` reports
    each step's rows and time, and the prefill time of the rows that joined before it.
    """
    param = next(net.base_lm.parameters())
    device, dtype = param.device, param.dtype
    patch, dim = net.config.patch_size, net.config.feat_dim
    rows: list[_Row] = []

    def new_rows(batch: Sequence[RowRequest]) -> list[_Row]:
        made = [_Row(len(rows) + i, r, torch.Generator(device=device).manual_seed(int(r.seed))) for i, r in enumerate(batch)]
        rows.extend(made)
        results.extend([None] * len(made))
        return made

    results: list[RowResult | None] = []

    def finish(done: list[_Row]) -> None:
        latents = [torch.stack(r.patches).reshape(-1, dim).T for r in done]  # (D, T * P) each
        for row, audio in zip(done, decode_latents(net.audio_vae, latents)):
            generated = torch.stack(row.patches[row.context :]).float().cpu()
            result = RowResult(audio[row.context * net.patch_samples :].cpu(), generated, row.capped)
            results[row.index] = result
            if on_done is not None:
                on_done(row.index, result, row.peak_rows)

    state = _prefill(net, new_rows(requests))
    max_rows = max_rows or len(requests)
    while state.rows:
        joined, joined_s = 0, 0.0
        if admit is not None and len(state.rows) < max_rows:
            joining = admit(max_rows - len(state.rows))
            if joining:
                began = time.perf_counter()
                state.join(_prefill(net, new_rows(joining)))
                joined, joined_s = len(joining), time.perf_counter() - began
        step_began = time.perf_counter()
        active = state.rows
        mu = net.dit_condition(state.lm_hidden, state.res_hidden)
        noise = torch.cat(
            [
                torch.randn((1, dim, patch), generator=r.generator, device=device, dtype=dtype) * r.request.temperature
                for r in active
            ]
        )
        new = net.feat_decoder(
            mu, state.condition.transpose(1, 2).contiguous(), noise, active[0].request.steps,
            [r.request.cfg_value for r in active],
        ).transpose(1, 2)  # (B, P, D)
        current = net.encode_patches(new.unsqueeze(1))[:, 0]  # (B, H)
        stop = net.stop_logits(state.lm_hidden).argmax(dim=-1).tolist()
        for i, row in enumerate(active):
            row.patches.append(new[i])
            if row.steps > MIN_PATCHES and stop[i] == 1:
                row.done = True
            elif row.steps + 1 >= row.request.max_patches:
                row.done = row.capped = True
            row.steps += 1
            row.peak_rows = max(row.peak_rows, len(active))
        if on_piece is not None:
            _emit_stream_pieces(net, [r for r in active if r.request.stream], on_piece, stream_window)
        state.condition = new
        if any(r.done for r in active):
            finish([r for r in active if r.done])
        keep = [i for i, r in enumerate(active) if not r.done and not (cancelled is not None and cancelled(r.index))]
        if len(keep) < len(active):
            state.keep(keep)
            current = current[torch.tensor(keep, device=device, dtype=torch.long)]
        if state.rows:
            positions = state.lm_cache.length - state.lm_cache.pad
            state.lm_hidden = net.fsq_layer(net.base_lm.step(current, positions, state.lm_cache))
            state.res_hidden = net.residual_lm.step(state.lm_hidden + current, positions, state.res_cache)
        if on_step is not None:
            on_step(len(active), time.perf_counter() - step_began, joined, joined_s)

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
