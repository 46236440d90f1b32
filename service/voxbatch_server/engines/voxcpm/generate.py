"""Batched generation: left-padded prefill, per-row decoding, rows leaving as they finish.

One `generate` call runs a whole batch. Every row keeps its own seed (own generator), cfg
value, temperature, stop decision and length cap, so a row's audio does not depend on which
other rows share its batch (up to floating-point summation order). Each new patch is decoded
to audio once, right after it is generated, carrying the VAE decoder's causal state from step
to step: streamed pieces join into exactly the audio of a unary request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import torch

from .minicpm import KVCache
from .model import REF_END_TOKEN, REF_START_TOKEN, VoxCPMNetwork

MIN_PATCHES = 2  # no stop before this step


@dataclass
class RowRequest:
    """One sentence to generate, tokenised and with its prompt already encoded."""

    tokens: list[int]  # prompt text + target text + the audio-start token
    prompt_feats: torch.Tensor | None  # (T, P, D) latent patches of the continuation prompt
    max_patches: int
    cfg_value: float = 2.0
    steps: int = 10
    temperature: float = 1.0
    seed: int = 0
    stream: bool = False
    # VoxCPM2: (R, P, D) patches of an isolated reference clip, put in front of the text
    # between the reference start and end tokens.
    reference_feats: torch.Tensor | None = None
    # Bad-case retry, as upstream's generate offers it: a row that generates at least this many
    # patches (6 per target-text token) is run again from its prompt with the next seed, up to
    # `retries` more times; the last try is kept. None: no retry.
    badcase_patches: float | None = None
    retries: int = 0

    @property
    def prefill_length(self) -> int:
        n = len(self.tokens) + (0 if self.prompt_feats is None else self.prompt_feats.shape[0])
        return n if self.reference_feats is None else n + self.reference_feats.shape[0] + 2


@dataclass
class RowResult:
    audio: torch.Tensor  # (N,) float32 on the CPU
    patches: torch.Tensor  # (T, P, D) generated latent patches, on the CPU
    capped: bool
    retries: int = 0  # times the row was generated again (bad-case retry)


@dataclass
class _Row:
    index: int
    request: RowRequest
    generator: torch.Generator
    patches: list[torch.Tensor] = field(default_factory=list)  # each (P, D)
    audio: list[torch.Tensor] = field(default_factory=list)  # each patch decoded, in order
    steps: int = 0  # patches generated so far
    peak_rows: int = 0  # most rows it shared a step with
    done: bool = False
    capped: bool = False
    retried: int = 0  # tries before this one

    def badcase(self) -> bool:
        r = self.request
        return r.badcase_patches is not None and self.retried < r.retries and self.steps >= r.badcase_patches

    def retry(self, device) -> _Row:
        """The same row again from its prompt, with the next seed (upstream's rule)."""
        request = replace(self.request, seed=self.request.seed + 1)
        return _Row(self.index, request, torch.Generator(device=device).manual_seed(int(request.seed)),
                    peak_rows=self.peak_rows, retried=self.retried + 1)


@dataclass
class _State:
    """The running batch: its rows and what the next step needs, one entry per active row."""

    rows: list[_Row]
    lm_cache: KVCache
    res_cache: KVCache
    lm_hidden: torch.Tensor  # (B, H)
    res_hidden: torch.Tensor  # (B, H)
    condition: torch.Tensor  # (B, P, D): the previous patch
    carries: list[torch.Tensor]  # the VAE decoder's causal state, (B, C, k) each

    def keep(self, index: list[int]) -> None:
        rows = torch.tensor(index, device=self.lm_hidden.device, dtype=torch.long)
        self.lm_cache.select(rows)
        self.res_cache.select(rows)
        self.lm_hidden, self.res_hidden, self.condition = self.lm_hidden[rows], self.res_hidden[rows], self.condition[rows]
        self.carries = [c[rows] for c in self.carries]
        self.rows = [self.rows[i] for i in index]

    def join(self, other: _State) -> None:
        self.lm_cache = KVCache.join(self.lm_cache, other.lm_cache)
        self.res_cache = KVCache.join(self.res_cache, other.res_cache)
        self.lm_hidden = torch.cat([self.lm_hidden, other.lm_hidden])
        self.res_hidden = torch.cat([self.res_hidden, other.res_hidden])
        self.condition = torch.cat([self.condition, other.condition])
        self.carries = [torch.cat([a, b]) for a, b in zip(self.carries, other.carries)]
        self.rows += other.rows


def _layout(request: RowRequest) -> tuple[list[int], list[torch.Tensor | None]]:
    """The row's input sequence: token ids, and the audio patch (or None) at each position.
    [103, reference, 104]? + text + 101 + prompt?, as the official code builds it."""
    ids: list[int] = []
    audio: list[torch.Tensor | None] = []
    if request.reference_feats is not None:
        ids += [REF_START_TOKEN] + [0] * request.reference_feats.shape[0] + [REF_END_TOKEN]
        audio += [None, *request.reference_feats, None]
    ids += request.tokens
    audio += [None] * len(request.tokens)
    if request.prompt_feats is not None:
        ids += [0] * request.prompt_feats.shape[0]
        audio += list(request.prompt_feats)
    return ids, audio


def _prefill(net: VoxCPMNetwork, rows: list[_Row]) -> _State:
    """Run the prompt of every row through both LMs, left-padded to a common width."""
    param = next(net.base_lm.parameters())
    device, dtype = param.device, param.dtype
    patch, dim = net.config.patch_size, net.config.feat_dim
    requests = [r.request for r in rows]
    layouts = [_layout(r) for r in requests]
    width = max(len(ids) for ids, _ in layouts)
    pad = torch.tensor([width - len(ids) for ids, _ in layouts], device=device)
    ids = torch.zeros(len(rows), width, dtype=torch.long, device=device)
    feats = torch.zeros(len(rows), width, patch, dim, dtype=dtype, device=device)
    is_text = torch.zeros(len(rows), width, dtype=torch.bool, device=device)
    is_audio = torch.zeros_like(is_text)
    for i, (row_ids, row_audio) in enumerate(layouts):
        start = width - len(row_ids)
        ids[i, start:] = torch.tensor(row_ids, dtype=torch.long, device=device)
        for j, patch_feats in enumerate(row_audio):
            if patch_feats is None:
                is_text[i, start + j] = True
            else:
                feats[i, start + j] = patch_feats.to(device=device, dtype=dtype)
                is_audio[i, start + j] = True

    embeds = net.base_lm.embed_tokens(ids) * net.embed_scale
    feat_embeds = torch.zeros_like(embeds)
    if bool(is_audio.any()):
        feat_embeds[is_audio] = net.encode_patches(feats[is_audio].unsqueeze(0))[0]
    embeds = torch.where(is_audio.unsqueeze(-1), feat_embeds, torch.where(is_text.unsqueeze(-1), embeds, 0))
    capacity = width + max(r.max_patches for r in requests) + 1
    enc, lm_cache = net.base_lm.prefill(embeds, pad, capacity)
    enc = torch.where(is_audio.unsqueeze(-1), net.fsq_layer(enc), torch.where(is_text.unsqueeze(-1), enc, 0))
    res, res_cache = net.residual_lm.prefill(
        net.residual_input(enc, torch.where(is_audio.unsqueeze(-1), feat_embeds, 0)), pad, capacity
    )
    carries = _prime_decoder(net, requests, device)
    return _State(list(rows), lm_cache, res_cache, enc[:, -1], res[:, -1], feats[:, -1], carries)


def _prime_decoder(net: VoxCPMNetwork, requests: Sequence[RowRequest], device) -> list[torch.Tensor]:
    """Decoder state of new rows. A continuation decodes its last prompt patches first (their
    audio is dropped), as the official code decodes them in front of the generated patches."""
    decoder = net.audio_vae.decoder
    carries = decoder.carries(len(requests), device)
    by_context: dict[int, list[int]] = {}
    for i, request in enumerate(requests):
        if request.prompt_feats is not None:
            by_context.setdefault(min(net.stream_context, request.prompt_feats.shape[0]), []).append(i)
    for context, members in by_context.items():
        if context == 0:
            continue
        z = torch.stack([_latents(requests[i].prompt_feats[-context:]) for i in members]).to(device)
        index = torch.tensor(members, device=device)
        _audio, primed = decoder.step(z, [c[index] for c in carries])
        for c, p in zip(carries, primed):
            c[index] = p
    return carries


def _latents(patches: torch.Tensor) -> torch.Tensor:
    """(T, P, D) patches -> (D, T * P) float32 latents for the VAE."""
    return patches.reshape(-1, patches.shape[-1]).T.float()


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
    on_step: Callable[[int, float, int, float, int, float], None] | None = None,
) -> list[RowResult | None]:
    """Generate every row and return one result per row, in order.

    `on_piece(i, samples)` receives each new 160 ms of streaming rows after each step; rows
    for which `cancelled(i)` turns true are dropped (result None). Between steps, `admit(n)` may
    return up to n more requests (continuous batching): they are prefilled, join the running
    batch, and get the next indices; the batch never exceeds `max_rows`. Rows are decoded as
    they finish and handed to `on_done(i, result, peak_rows)` at once, so a short row does
    not wait for the rows still generating. `on_step(rows, seconds, joined, joined_s, left, left_s)`
    reports each step's rows and time, the prefill time of the rows that joined before it, and
    the decoding time of the rows that finished in it (both apart from the step's own time).
    A bad case (see RowRequest.badcase_patches) leaves the batch like a finished row and
    rejoins it from its prompt between steps, so its neighbours never wait for it.
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
        for row in done:
            audio = torch.cat(row.audio).cpu()
            result = RowResult(audio, torch.stack(row.patches).float().cpu(), row.capped, row.retried)
            results[row.index] = result
            if on_done is not None:
                on_done(row.index, result, row.peak_rows)

    state = _prefill(net, new_rows(requests))
    max_rows = max_rows or len(requests)
    retrying: list[_Row] = []  # bad cases waiting to rejoin: only they start again, not their batch
    while state.rows or retrying:
        step_began = time.perf_counter()  # the step's time includes the admission round trip
        joined, joined_s, left, left_s = 0, 0.0, 0, 0.0
        if retrying or (admit is not None and len(state.rows) < max_rows):
            began = time.perf_counter()
            room = max_rows - len(state.rows)
            joining_rows, retrying = retrying[:room], retrying[room:]
            if admit is not None and len(joining_rows) < room:
                joining_rows += new_rows(admit(room - len(joining_rows)) or [])
            if joining_rows:
                fresh = _prefill(net, joining_rows)
                if state.rows:
                    state.join(fresh)
                else:
                    state = fresh
                joined, joined_s = len(joining_rows), time.perf_counter() - began
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
        audio, state.carries = net.audio_vae.decoder.step(new.transpose(1, 2).float(), state.carries)
        for row, samples in zip(active, audio[:, 0]):
            row.audio.append(samples)
            if on_piece is not None and row.request.stream:
                on_piece(row.index, samples.cpu())
        state.condition = new
        done = [r for r in active if r.done]
        if done:
            began = time.perf_counter()
            again = [r for r in done if r.badcase() and not (cancelled is not None and cancelled(r.index))]
            retrying += [r.retry(device) for r in again]
            finish([r for r in done if all(r is not a for a in again)])
            left, left_s = len(done), time.perf_counter() - began
        keep = [i for i, r in enumerate(active) if not r.done and not (cancelled is not None and cancelled(r.index))]
        if len(keep) < len(active):
            state.keep(keep)
            current = current[torch.tensor(keep, device=device, dtype=torch.long)]
        if state.rows:
            positions = state.lm_cache.length - state.lm_cache.pad
            state.lm_hidden = net.fsq_layer(net.base_lm.step(current, positions, state.lm_cache))
            state.res_hidden = net.residual_lm.step(net.residual_input(state.lm_hidden, current), positions, state.res_cache)
        if on_step is not None:
            on_step(len(active), time.perf_counter() - step_began - joined_s - left_s, joined, joined_s, left, left_s)

    return results
