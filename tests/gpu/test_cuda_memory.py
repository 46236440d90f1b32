"""The free-memory budget, the estimate against measured peaks, and a real out-of-memory error
on the device: the batch is halved until it fits and every request gets its audio."""

from __future__ import annotations

import asyncio

import numpy as np
import torch

from voxbatch_server.batching import Batcher, BatchLimits
from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine
from voxbatch_server.engines.voxcpm.generate import generate
from voxbatch_server.server import batch_limits
from voxbatch_server.settings import Settings

from .conftest import task

LONG = "Batching requests makes speech faster when many people speak at once, and nobody waits for long."


def test_the_budget_is_a_share_of_free_device_memory(cuda_device, tiny_dir):
    engine = VoxCPMEngine(tiny_dir, device=cuda_device)
    free, total = torch.cuda.mem_get_info()
    reported = engine.device_free_memory()
    assert abs(reported - free) < 256 << 20 and 0 < reported <= total
    limits = batch_limits(Settings(engine="voxcpm", model_dir=tiny_dir, gpu_memory_fraction=0.5), engine)
    assert abs(limits.memory_budget_bytes - 0.5 * reported) < 256 << 20


def test_the_estimate_covers_the_measured_peak(cuda_device, mid_dir):
    engine = VoxCPMEngine(mid_dir, device=cuda_device, dtype="float32")
    for rows in (1, 4, 16):
        works = [engine.prepare(task(LONG, seed=i)) for i in range(rows)]
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        generate(engine._net, [w.request for w in works])
        peak = torch.cuda.max_memory_allocated() - base
        estimate = engine.memory_cost(works)
        assert peak <= estimate, f"{rows} rows peaked at {peak >> 20} MiB, over the estimate of {estimate >> 20} MiB"


def test_an_out_of_memory_batch_is_halved_and_nothing_is_lost(cuda_device, mid_dir):
    engine = VoxCPMEngine(mid_dir, device=cuda_device, dtype="float32")
    works = [engine.prepare(task(LONG, seed=i)) for i in range(16)]
    alone = [generate(engine._net, [w.request])[0].audio.numpy() for w in works]

    def peak_of(batch) -> int:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        generate(engine._net, [w.request for w in batch])
        return torch.cuda.max_memory_allocated() - base

    one, all_rows = peak_of(works[:1]), peak_of(works)
    assert all_rows > 3 * one, f"test mis-sized: 16 rows peak at {all_rows >> 20} MiB, one at {one >> 20} MiB"
    torch.cuda.empty_cache()
    total = torch.cuda.mem_get_info()[1]
    # Room for about 60% of the whole batch: 16 rows cannot run, halves or quarters can.
    allowed = torch.cuda.memory_reserved() + int(0.6 * all_rows)
    torch.cuda.set_per_process_memory_fraction(allowed / total)
    try:
        results, stats = asyncio.run(_run_through_the_batcher(engine, works))
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert stats.oom_retries >= 1, "the batch of 16 should not have fitted"
    for got, expected in zip(results, alone):
        assert len(got.samples) == len(expected)
        np.testing.assert_allclose(got.samples, expected, atol=1e-4)


async def _run_through_the_batcher(engine, works):
    # The budget is set high on purpose: the batcher must not split by estimate, so the engine
    # meets the device's own limit.
    batcher = Batcher(engine, BatchLimits(max_batch_size=16, window_s=0.01, memory_budget_bytes=1 << 50), 64)
    batcher.start()
    tickets = batcher.submit_many(works, priority=0)
    results = await asyncio.wait_for(asyncio.gather(*(t.result() for t in tickets)), 600)
    await batcher.drain()
    return results, batcher.stats


def test_the_engine_reports_each_batch_measured_peak_to_the_batcher(cuda_device, mid_dir):
    engine = VoxCPMEngine(mid_dir, device=cuda_device, dtype="float32")
    works = [engine.prepare(task(LONG, seed=i)) for i in range(4)]
    reports = []

    async def run():
        batcher = Batcher(engine, BatchLimits(max_batch_size=4, window_s=0.01, memory_budget_bytes=1 << 40), 16)
        batcher.on_batch = reports.append
        batcher.start()
        tickets = batcher.submit_many(works, priority=0)
        await asyncio.wait_for(asyncio.gather(*(t.result() for t in tickets)), 300)
        await batcher.drain()
        return batcher

    batcher = asyncio.run(run())
    assert batcher.memory_calibration.measured_batches == 1
    estimated, measured = reports[0].memory_measured
    assert estimated == engine.memory_cost(works) and 0 < measured <= estimated
    assert batcher.memory_calibration.factor == 1.0  # the estimate covered the peak: no correction
