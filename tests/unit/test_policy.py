"""The batching decisions as pure functions of queue, time and limits (no threads, no sleeping)."""

from __future__ import annotations

import pytest

from voxbatch_server.batching.policy import BatchLimits, Pending, decide, fill_batch, split_expired, take_compatible

LIMITS = BatchLimits(max_batch_size=4, window_s=0.05, memory_budget_bytes=1000, workers=2)


def padded_cost(payloads):
    """Cost of a padded batch: longest item times batch size."""
    return len(payloads) * max(payloads)


def item(seq, size=10, t=0.0, key="a", priority=0, deadline=None):
    return Pending(payload=size, key=key, priority=priority, seq=seq, enqueued_at=t, deadline=deadline)


def test_idle_engine_dispatches_a_lone_request_at_once():
    d = decide([item(0, t=0.0)], now=0.0, running=0, cost=padded_cost, limits=LIMITS)
    assert [p.seq for p in d.batch] == [0]


def test_busy_engine_waits_for_the_window_then_dispatches():
    queue = [item(0, t=1.0), item(1, t=1.01)]
    d = decide(queue, now=1.02, running=1, cost=padded_cost, limits=LIMITS)
    assert not d.batch
    assert d.wake_at == pytest.approx(1.05)
    d = decide(queue, now=1.05, running=1, cost=padded_cost, limits=LIMITS)
    assert [p.seq for p in d.batch] == [0, 1]


def test_full_batch_dispatches_before_the_window_ends():
    queue = [item(i, t=1.0) for i in range(6)]
    d = decide(queue, now=1.001, running=1, cost=padded_cost, limits=LIMITS)
    assert [p.seq for p in d.batch] == [0, 1, 2, 3]


def test_no_free_worker_means_no_dispatch():
    d = decide([item(0)], now=10.0, running=2, cost=padded_cost, limits=LIMITS)
    assert d.batch == () and d.wake_at is None


@pytest.mark.parametrize("max_batch_size", [1, 2, 3, 8])
def test_batch_never_exceeds_max_size(max_batch_size):
    limits = BatchLimits(max_batch_size=max_batch_size, window_s=0.05, memory_budget_bytes=10**9)
    batch, _ = fill_batch([item(i) for i in range(10)], padded_cost, limits)
    assert len(batch) == max_batch_size


def test_interactive_requests_go_before_background_ones():
    queue = [item(0, priority=1), item(1, priority=1), item(2, priority=0), item(3, priority=0)]
    limits = BatchLimits(max_batch_size=2, memory_budget_bytes=10**9)
    batch, _ = fill_batch(queue, padded_cost, limits)
    assert [p.seq for p in batch] == [2, 3]


def test_only_compatible_items_share_a_batch():
    queue = [item(0, key="fast"), item(1, key="slow"), item(2, key="fast"), item(3, key="slow")]
    batch, _ = fill_batch(queue, padded_cost, BatchLimits(memory_budget_bytes=10**9))
    assert [p.seq for p in batch] == [0, 2]


def test_memory_budget_splits_the_batch_and_keeps_order():
    # Padded cost: 3 items of 300 = 900 fits; a fourth makes 1200 > 1000.
    queue = [item(i, size=300) for i in range(6)]
    batch, split = fill_batch(queue, padded_cost, BatchLimits(max_batch_size=8, memory_budget_bytes=1000))
    assert [p.seq for p in batch] == [0, 1, 2]
    assert split


def test_one_long_item_shrinks_the_batch_it_joins():
    # Short items fit eight at a time, but a long one pads everything to its length.
    queue = [item(0, size=100), item(1, size=100), item(2, size=400), item(3, size=100)]
    batch, split = fill_batch(queue, padded_cost, BatchLimits(max_batch_size=8, memory_budget_bytes=1000))
    assert [p.seq for p in batch] == [0, 1]
    assert split


def test_split_batch_dispatches_at_once_even_while_busy():
    queue = [item(i, size=300, t=5.0) for i in range(4)]
    d = decide(queue, now=5.0, running=1, cost=padded_cost, limits=LIMITS)
    assert len(d.batch) == 3 and d.split_for_memory


def test_running_batches_count_against_the_budget():
    queue = [item(0, size=600, t=0.0)]
    d = decide(queue, now=1.0, running=1, cost=padded_cost, limits=LIMITS, in_use_bytes=500)
    assert d.batch == ()
    d = decide(queue, now=1.0, running=1, cost=padded_cost, limits=LIMITS, in_use_bytes=300)
    assert len(d.batch) == 1


def test_expired_items_are_separated_and_never_dispatched():
    queue = [item(0, deadline=1.0), item(1, deadline=3.0), item(2)]
    alive, expired = split_expired(queue, now=2.0)
    assert [p.seq for p in alive] == [1, 2]
    assert [p.seq for p in expired] == [0]


def test_continuous_batching_admits_compatible_work_within_room_and_budget():
    queue = [item(0, key="b", size=100), item(1, size=100), item(2, size=100), item(3, size=100)]
    joined = take_compatible(queue, "a", running_payloads=[100, 100], room=5, cost=padded_cost, budget=450)
    # 2 running + 2 joined = 400 fits; a fifth row would make 500.
    assert [p.seq for p in joined] == [1, 2]
    assert take_compatible(queue, "a", [100], room=1, cost=padded_cost, budget=10**6)[0].seq == 1
