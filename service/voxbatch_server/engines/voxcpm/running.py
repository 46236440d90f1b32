"""A running VoxCPM batch held in row slots: prefill of joining rows, and the per-slot state
every decode step reads and writes.

Rows are prefilled together, left-padded to a common width (what the official model computes
for each row alone, up to rounding), then each row's keys and values are written from position 0
of a free slot of fixed-capacity caches (see slots.py). Every slot also holds the row's last LM
and residual LM states, its previous patch (the DiT's condition) and the VAE decoder's causal
state. Slot tensors keep their addresses while the batch stays in its bucket and capacity.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .model import REF_END_TOKEN, REF_START_TOKEN, VoxCPMNetwork
from .slots import SlotCache, bucket_for, capacity_for

if TYPE_CHECKING:
    from .generate import RowRequest


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


@dataclass
class Prefilled:
    """Joining rows after prefill, one entry per row; keys and values (layers, n, kv_heads, L, D)
    left-padded by `pad`."""

    lm_k: torch.Tensor
    lm_v: torch.Tensor
    res_k: torch.Tensor
    res_v: torch.Tensor
    pad: list[int]
    lm_hidden: torch.Tensor  # (n, H)
    res_hidden: torch.Tensor  # (n, H)
    condition: torch.Tensor  # (n, P, D)
    carries: list[torch.Tensor]


def prefill(net: VoxCPMNetwork, requests: Sequence[RowRequest]) -> Prefilled:
    """Run the prompt of every row through both LMs, left-padded to a common width."""
    param = next(net.base_lm.parameters())
    device, dtype = param.device, param.dtype
    patch, dim = net.config.patch_size, net.config.feat_dim
    layouts = [_layout(r) for r in requests]
    width = max(len(ids) for ids, _ in layouts)
    pads = [width - len(ids) for ids, _ in layouts]
    pad = torch.tensor(pads, device=device)
    ids = torch.zeros(len(requests), width, dtype=torch.long, device=device)
    feats = torch.zeros(len(requests), width, patch, dim, dtype=dtype, device=device)
    is_text = torch.zeros(len(requests), width, dtype=torch.bool, device=device)
    is_audio = torch.zeros_like(is_text)
    for i, (row_ids, row_audio) in enumerate(layouts):
        start = pads[i]
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
    enc, lm_k, lm_v = net.base_lm.prefill(embeds, pad)
    enc = torch.where(is_audio.unsqueeze(-1), net.fsq_layer(enc), torch.where(is_text.unsqueeze(-1), enc, 0))
    res, res_k, res_v = net.residual_lm.prefill(net.residual_input(enc, torch.where(is_audio.unsqueeze(-1), feat_embeds, 0)), pad)
    carries = _prime_decoder(net, requests, device)
    return Prefilled(lm_k, lm_v, res_k, res_v, pads, enc[:, -1], res[:, -1], feats[:, -1], carries)


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


def row_positions(request: RowRequest) -> int:
    """Cache positions a row can fill: its prefill and every patch it may generate, plus one."""
    return request.prefill_length + request.max_patches + 1


@dataclass
class SlotTensors:
    """What a step reads and writes per slot, for one bucket and capacity (the VAE's causal
    state, only read eagerly, is kept apart)."""

    lm: SlotCache
    res: SlotCache  # its lengths are the base LM's: both LMs advance together
    lm_hidden: torch.Tensor  # (slots, H)
    res_hidden: torch.Tensor  # (slots, H)
    condition: torch.Tensor  # (slots, P, D): each row's previous patch

    @property
    def key(self) -> tuple[int, int]:
        return self.lm.slots, self.lm.capacity


class SlotPool:
    """Slot tensors kept between batches, per (slots, capacity): as many sets of a shape as
    batches of it ran at once (one per worker at most). A captured step reads and writes them at
    fixed addresses, so a later batch that takes a set replays the graph captured for it instead
    of capturing another."""

    def __init__(self) -> None:
        self._free: dict[tuple[int, int], list[SlotTensors]] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple[int, int]) -> SlotTensors | None:
        with self._lock:
            free = self._free.get(key)
            return free.pop() if free else None

    def give(self, tensors: SlotTensors) -> None:
        tensors.lm.lengths.zero_()
        with self._lock:
            self._free.setdefault(tensors.key, []).append(tensors)


class RunningBatch:
    """The batch's slots: `rows[s]` is the row in slot s (None: free), and per slot the tensors
    the next step reads. Rows are opaque here but for their `.request`."""

    def __init__(self, net: VoxCPMNetwork, buckets: tuple[int, ...], pool: SlotPool | None = None) -> None:
        param = next(net.base_lm.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.net = net
        self.buckets = buckets
        self.pool = pool
        self.tensors: SlotTensors | None = None
        self.limit = net.config.lm_config.max_position_embeddings
        self.rows: list[Any | None] = []
        self.carries: list[torch.Tensor] = []
        self.moves = 0  # times the slot tensors were reallocated (bucket or capacity changes)

    @property
    def slots(self) -> int:
        return len(self.rows)

    # The slot tensors, by name (what the steps read and write).
    lm = property(lambda self: self.tensors.lm)
    res = property(lambda self: self.tensors.res)
    lm_hidden = property(lambda self: self.tensors.lm_hidden)
    res_hidden = property(lambda self: self.tensors.res_hidden)
    condition = property(lambda self: self.tensors.condition)

    def occupied(self) -> list[int]:
        return [s for s, row in enumerate(self.rows) if row is not None]

    def join(self, rows: Sequence[Any]) -> list[int]:
        """Prefill `rows` and write them into free slots (moving to a larger bucket or capacity
        first if they do not fit); returns their slots."""
        self.fit(len(rows), max((row_positions(r.request) for r in rows), default=0))
        fresh = prefill(self.net, [r.request for r in rows])
        free = [s for s, row in enumerate(self.rows) if row is None][: len(rows)]
        for i, (slot, row) in enumerate(zip(free, rows)):
            pad = fresh.pad[i]
            self.lm.fill(slot, fresh.lm_k[:, i, :, pad:], fresh.lm_v[:, i, :, pad:])
            self.res.fill(slot, fresh.res_k[:, i, :, pad:], fresh.res_v[:, i, :, pad:])
            self.lm_hidden[slot] = fresh.lm_hidden[i]
            self.res_hidden[slot] = fresh.res_hidden[i]
            self.condition[slot] = fresh.condition[i]
            for mine, theirs in zip(self.carries, fresh.carries):
                mine[slot] = theirs[i]
            self.rows[slot] = row
        return free

    def leave(self, slot: int) -> None:
        self.rows[slot] = None
        self.lm.free(slot)
        self.res.free(slot)

    def fit(self, joining: int = 0, positions: int = 0) -> None:
        """Move to the bucket that holds the live rows plus `joining`, with room for `positions`:
        one copy when the bucket or capacity changes (a batch that shrank to a smaller bucket
        moves there, so a captured step runs the smaller, cheaper graph), none otherwise."""
        keep = self.occupied()
        slots = bucket_for(len(keep) + joining, self.buckets)
        needed = max([positions] + [row_positions(self.rows[s].request) for s in keep])
        if self.tensors is not None and slots == self.slots and needed <= self.lm.capacity:
            return
        old, carries, rows = self.tensors, self.carries, self.rows
        self.tensors = self._tensors(slots, capacity_for(needed, self.limit))
        self.carries = self.net.audio_vae.decoder.carries(slots, self.device)
        self.rows = [None] * slots
        if old is not None:
            old.lm.copy_rows(self.lm, keep)
            old.res.copy_rows(self.res, keep)
            index = torch.tensor(keep, device=self.device, dtype=torch.long)
            n = len(keep)
            self.lm_hidden[:n] = old.lm_hidden[index]
            self.res_hidden[:n] = old.res_hidden[index]
            self.condition[:n] = old.condition[index]
            for mine, theirs in zip(self.carries, carries):
                mine[:n] = theirs[index]
            for i, s in enumerate(keep):
                self.rows[i] = rows[s]
            self._release(old)
        self.moves += 1

    def close(self) -> None:
        """The batch is over: its slot tensors go back to the pool (if it has one)."""
        if self.tensors is not None:
            self._release(self.tensors)
            self.tensors = None

    def _release(self, tensors: SlotTensors) -> None:
        if self.pool is not None:
            self.pool.give(tensors)

    def _tensors(self, slots: int, capacity: int) -> SlotTensors:
        pooled = self.pool.take((slots, capacity)) if self.pool is not None else None
        if pooled is not None:
            return pooled
        net, like = self.net, {"device": self.device, "dtype": self.dtype}
        lm, res = net.base_lm.config, net.residual_lm.config
        lm_cache = SlotCache.empty(lm.num_hidden_layers, slots, lm.num_key_value_heads, capacity, lm.head_dim, **like)
        res_cache = SlotCache.empty(res.num_hidden_layers, slots, res.num_key_value_heads, capacity, res.head_dim, **like)
        res_cache.lengths = lm_cache.lengths
        return SlotTensors(
            lm_cache, res_cache, torch.zeros(slots, lm.hidden_size, **like), torch.zeros(slots, res.hidden_size, **like),
            torch.zeros(slots, net.config.patch_size, net.config.feat_dim, **like),
        )
