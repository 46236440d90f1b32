"""The memory-aware split corrects the engine's estimate when measured peaks run above it."""

from __future__ import annotations

import asyncio

from tests.support.engines import ToneEngine, ToneWork
from voxbatch_server.batching import Batcher, BatchLimits
from voxbatch_server.batching.memory_calibration import MemoryCalibration


class MeasuringEngine(ToneEngine):
    """Reports, like the VoxCPM engine on a GPU, a measured peak for each batch: `overrun`
    times its own estimate."""

    def __init__(self, overrun: float, **kw) -> None:
        super().__init__(**kw)
        self.overrun = overrun

    def run_batch(self, batch, session=None):
        results = super().run_batch(batch, session)
        estimate = self.memory_cost(batch)
        session.report_memory(estimate, int(estimate * self.overrun))
        return results


def test_the_factor_follows_peaks_above_the_estimate_and_forgets_them():
    calibration = MemoryCalibration(recent=3)
    assert calibration.factor == 1 and calibration.cost(100, 2, 1000) == 100
    calibration.observe(100, 60)  # below: no reason to trust the estimate less
    assert calibration.factor == 1
    calibration.observe(100, 150)
    assert calibration.factor == 1.5 and calibration.cost(100, 2, 1000) == 150
    for _ in range(3):
        calibration.observe(100, 90)
    assert calibration.factor == 1  # the overrun left the window of recent batches


def test_a_single_item_that_fits_by_its_own_estimate_is_never_shut_out():
    calibration = MemoryCalibration()
    calibration.observe(100, 300)
    assert calibration.cost(800, 1, 1000) == 1000  # capped at the budget: it may still run alone
    assert calibration.cost(1200, 1, 1000) == 3600  # already too big alone: refused as before
    assert calibration.cost(400, 2, 1000) == 1200


async def test_batches_shrink_after_measured_peaks_ran_above_the_estimates():
    # Each item costs 10 000 by the estimate; the budget holds 4 of them, but each batch really
    # takes twice its estimate.
    engine = MeasuringEngine(overrun=2.0, bytes_per_char=1000)
    batcher = Batcher(engine, BatchLimits(max_batch_size=8, window_s=0.01, memory_budget_bytes=40_000), 64)
    batcher.start()
    first = batcher.submit_many([ToneWork(f"item {i:05d}", 1.0) for i in range(4)], priority=0)
    await asyncio.wait_for(asyncio.gather(*(t.result() for t in first)), 5)
    assert batcher.memory_calibration.factor == 2.0
    later = batcher.submit_many([ToneWork(f"next {i:05d}", 1.0) for i in range(4)], priority=0)
    lone = batcher.submit_many([ToneWork("x" * 35, 1.0)], priority=1)  # 35 000 by its estimate
    await asyncio.wait_for(asyncio.gather(*(t.result() for t in later + lone)), 5)
    assert [len(b) for b in engine.batches] == [4, 2, 2, 1]
    assert batcher.stats.split_for_memory >= 1
    await batcher.drain()
