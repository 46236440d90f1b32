"""Fixed-capacity KV caches in row slots, each slot with its own length.

A running batch owns one cache per LM sized for a row bucket (1, 2, 4, ... rows, the last bucket
being the max batch size) and a position capacity. A row that joins writes its prefill into a free
slot; a row that leaves frees its slot; nothing is reallocated while the batch stays in its bucket
and capacity, so the decode step sees the same tensors every step (what a captured step needs).
Every slot keeps its own length, so rows of different prompt lengths need no padding between
them, and a row that sits out a step (paused) simply neither writes nor advances.
"""

from __future__ import annotations

import torch

# Capacities are powers of two from here: a joining row rarely forces a larger cache, and a
# captured step meets few distinct shapes.
MIN_CAPACITY = 256


def row_buckets(max_rows: int) -> tuple[int, ...]:
    """Powers of two below `max_rows`, then `max_rows` itself: 5 -> (1, 2, 4, 5)."""
    buckets = [1]
    while buckets[-1] * 2 < max_rows:
        buckets.append(buckets[-1] * 2)
    if buckets[-1] < max_rows:
        buckets.append(max_rows)
    return tuple(buckets)


def bucket_for(rows: int, buckets: tuple[int, ...]) -> int:
    """The smallest of `buckets` that holds `rows` (more rows than any: a bucket of their own)."""
    return next((b for b in buckets if b >= rows), rows)


def capacity_for(positions: int, limit: int) -> int:
    """Cache positions for rows needing up to `positions`: the next power of two from
    MIN_CAPACITY, but never past the model's `limit` unless a row needs it."""
    capacity = MIN_CAPACITY
    while capacity < positions:
        capacity *= 2
    return max(positions, min(capacity, limit))


class SlotCache:
    """Keys and values of every layer of one LM: (layers, slots, kv_heads, capacity, head_dim)
    each, and `lengths` (slots,): how many positions each slot holds. A slot's next token goes
    to position `lengths[slot]`; positions at or past it are never attended to."""

    def __init__(self, k: torch.Tensor, v: torch.Tensor, lengths: torch.Tensor) -> None:
        self.k, self.v, self.lengths = k, v, lengths

    @classmethod
    def empty(cls, layers: int, slots: int, kv_heads: int, capacity: int, head_dim: int, device, dtype) -> SlotCache:
        k = torch.zeros(layers, slots, kv_heads, capacity, head_dim, device=device, dtype=dtype)
        return cls(k, torch.zeros_like(k), torch.zeros(slots, dtype=torch.long, device=device))

    @property
    def slots(self) -> int:
        return self.k.shape[1]

    @property
    def capacity(self) -> int:
        return self.k.shape[3]

    def fill(self, slot: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Write a prefilled row, k and v (layers, kv_heads, n, head_dim), into `slot`."""
        n = k.shape[2]
        if n > self.capacity:
            raise RuntimeError(f"a prefill of {n} positions does not fit a cache of {self.capacity}")
        self.k[:, slot, :, :n] = k
        self.v[:, slot, :, :n] = v
        self.lengths[slot] = n

    def free(self, slot: int) -> None:
        self.lengths[slot] = 0

    def copy_rows(self, target: SlotCache, keep: list[int]) -> None:
        """Put slot keep[i] into slot i of `target` (every other slot of it empty): the one copy a
        batch pays when it changes bucket or needs more positions."""
        target.lengths.zero_()
        if keep:
            index = torch.tensor(keep, device=self.k.device, dtype=torch.long)
            filled = min(self.capacity, target.capacity)
            target.k[:, : len(keep), :, :filled] = self.k[:, index, :, :filled]
            target.v[:, : len(keep), :, :filled] = self.v[:, index, :, :filled]
            target.lengths[: len(keep)] = self.lengths[index]
