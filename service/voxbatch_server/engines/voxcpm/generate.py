"""Batched generation: rows in slots, per-row decoding, rows joining, pausing and leaving.

One `generate` call runs a whole batch. Every row keeps its own seed (own generator), cfg
value, temperature, stop decision and length cap, so a row's audio does not depend on which
other rows share its batch (up to floating-point summation order). Each new patch is decoded
to audio once, right after it is generated, carrying the VAE decoder's causal state from step
to step: streamed pieces join into exactly the audio of a unary request.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace

import torch

from .graphs import CaptureFailed
from .model import VoxCPMNetwork
from .running import RunningBatch
from .slots import row_buckets
from .step import eager_step

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
    on_step: Callable[..., None] | None = None,
    may_wait: Callable[[], Collection[int]] | None = None,
) -> list[RowResult | None]:
    """Generate every row and return one result per row, in order.

    `on_piece(i, samples)` receives each new 160 ms of streaming rows after each step; rows
    for which `cancelled(i)` turns true are dropped (result None). Between steps, `admit(n)` may
    return up to n more requests (continuous batching): they are prefilled, join the running
    batch, and get the next indices; the batch never exceeds `max_rows`. Rows are decoded as
    they finish and handed to `on_done(i, result, peak_rows)` at once, so a short row does
    not wait for the rows still generating. `on_step(rows, seconds, joined, joined_s, left, left_s, paused)`
    reports each step's computed rows and time, the prefill time of the rows that joined before
    it, the decoding time of the rows that finished in it (both apart from the step's own time)
    and how many rows sat it out. Once per step `may_wait()` names rows (by index) that may sit
    the step out: on the eager path they do (a paused row keeps its state and later generates
    exactly what it would have); a captured step costs the same whatever it masks, so there no
    row waits. A bad case (see RowRequest.badcase_patches) leaves the batch like a finished row
    and rejoins it from its prompt between steps, so its neighbours never wait for it.
    """
    param = next(net.base_lm.parameters())
    device = param.device
    patch, dim = net.config.patch_size, net.config.feat_dim
    rows: list[_Row] = []
    results: list[RowResult | None] = []

    def new_rows(batch: Sequence[RowRequest]) -> list[_Row]:
        made = [_Row(len(rows) + i, r, torch.Generator(device=device).manual_seed(int(r.seed))) for i, r in enumerate(batch)]
        rows.extend(made)
        results.extend([None] * len(made))
        return made

    def finish(done: list[_Row]) -> None:
        for row in done:
            audio = torch.cat(row.audio).cpu()
            result = RowResult(audio, torch.stack(row.patches).float().cpu(), row.capped, row.retried)
            results[row.index] = result
            if on_done is not None:
                on_done(row.index, result, row.peak_rows)

    max_rows = max_rows or len(requests)
    compiled = net.compiled_step
    if compiled is not None:
        batch = RunningBatch(net, compiled.batch_buckets(max_rows), compiled.pool)
    else:
        batch = RunningBatch(net, row_buckets(max_rows))
    try:
        batch.join(new_rows(requests))
        retrying: list[_Row] = []  # bad cases waiting to rejoin: only they start again, not their batch
        while batch.occupied() or retrying:
            step_began = time.perf_counter()  # the step's time includes the admission round trip
            joined, joined_s, left, left_s = 0, 0.0, 0, 0.0
            live = len(batch.occupied())
            if retrying or (admit is not None and live < max_rows):
                began = time.perf_counter()
                room = max_rows - live
                joining_rows, retrying = retrying[:room], retrying[room:]
                if admit is not None and len(joining_rows) < room:
                    joining_rows += new_rows(admit(room - len(joining_rows)) or [])
                if joining_rows:
                    batch.join(joining_rows)
                    joined, joined_s = len(joining_rows), time.perf_counter() - began
            occupied = batch.occupied()
            steps = batch.rows[occupied[0]].request.steps
            captured = compiled is not None and compiled.covers(batch.slots, steps)
            slots = occupied if captured else _stepping(batch, occupied, may_wait)
            active = [batch.rows[s] for s in slots]
            noise = torch.cat([torch.randn((1, dim, patch), generator=r.generator, device=device, dtype=param.dtype) for r in active])
            temperature = torch.tensor([r.request.temperature for r in active], device=device, dtype=torch.float32)
            cfg = torch.tensor([r.request.cfg_value for r in active], device=device, dtype=torch.float32)
            new, stop = _step(net, compiled if captured else None, batch, slots, noise, temperature, cfg, steps)
            stop = stop.tolist()
            for i, row in enumerate(active):
                row.patches.append(new[i])
                if row.steps > MIN_PATCHES and stop[i] == 1:
                    row.done = True
                elif row.steps + 1 >= row.request.max_patches:
                    row.done = row.capped = True
                row.steps += 1
                row.peak_rows = max(row.peak_rows, len(occupied))
            index = torch.tensor(slots, device=device, dtype=torch.long)
            audio, carries = net.audio_vae.decoder.step(new.transpose(1, 2).float(), [c[index] for c in batch.carries])
            for mine, stepped in zip(batch.carries, carries):
                mine[index] = stepped
            for row, samples in zip(active, audio[:, 0]):
                row.audio.append(samples)
                if on_piece is not None and row.request.stream:
                    on_piece(row.index, samples.cpu())
            done = [r for r in active if r.done]
            if done:
                began = time.perf_counter()
                again = [r for r in done if r.badcase() and not (cancelled is not None and cancelled(r.index))]
                retrying += [r.retry(device) for r in again]
                finish([r for r in done if all(r is not a for a in again)])
                left, left_s = len(done), time.perf_counter() - began
            gone = [s for s in occupied if batch.rows[s].done or (cancelled is not None and cancelled(batch.rows[s].index))]
            for slot in gone:
                batch.leave(slot)
            if gone and batch.occupied():
                batch.fit()  # fewer rows may fit a smaller bucket
            if on_step is not None:
                seconds = time.perf_counter() - step_began - joined_s - left_s
                on_step(len(slots), seconds, joined, joined_s, left, left_s, len(occupied) - len(slots))

    finally:
        batch.close()  # a compiled step's slot tensors go back to its pool
    return results


def _stepping(batch: RunningBatch, occupied: list[int], may_wait: Callable[[], Collection[int]] | None) -> list[int]:
    """The slots that step now: all occupied ones but those whose rows may wait, unless every
    row may (a step that computes nothing would only delay everyone)."""
    if may_wait is None:
        return occupied
    waiting = set(may_wait())
    slots = [s for s in occupied if batch.rows[s].index not in waiting]
    return slots or occupied


def _step(net: VoxCPMNetwork, compiled, batch: RunningBatch, slots: list[int], noise, temperature, cfg, steps: int):
    """The rows' step: compiled when given `compiled`, else (or when capturing it for this
    batch's shape failed, which leaves the batch unchanged) eager, over the same rows."""
    if compiled is not None:
        try:
            return _captured_step(compiled, batch, slots, noise, temperature, cfg, steps)
        except CaptureFailed:
            pass
    return eager_step(net, batch, slots, noise, temperature, cfg, steps)


def _captured_step(compiled, batch: RunningBatch, slots: list[int], noise, temperature, cfg, steps: int):
    """The compiled step over the whole bucket: the rows' noise, temperature and guidance go to
    their slots, free slots are masked; returns the rows' patches and stop decisions."""
    size, index = batch.slots, torch.tensor(slots, device=noise.device, dtype=torch.long)
    live = torch.zeros(size, dtype=torch.bool, device=noise.device)
    live[index] = True

    def spread(values: torch.Tensor) -> torch.Tensor:
        full = values.new_zeros((size, *values.shape[1:]))
        full[index] = values
        return full

    new, stop = compiled(batch, live, spread(noise), spread(temperature), spread(cfg), steps)
    return new[index], stop[index]
