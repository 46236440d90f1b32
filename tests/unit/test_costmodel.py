"""The cost model learns step costs online, from synthetic step times with noise and outliers."""

from __future__ import annotations

import random

import pytest

from voxbatch_server.batching.costmodel import CostModel


def true_step(rows):
    return 0.02 + 0.01 * rows


def test_cold_model_is_conservative_and_converges_within_a_few_batches():
    model = CostModel(prior_step_s=0.25)
    # Before any sample: the prior, as if batching gained nothing (slower than the truth).
    assert model.step_s("k", 4) == pytest.approx(1.0)
    assert all(model.step_s("k", n) > true_step(n) for n in range(1, 9))
    rng = random.Random(1)
    for rows in (1, 2, 3):  # three short batches, a handful of steps each
        for _ in range(5):
            model.observe_step("k", rows, true_step(rows) * rng.uniform(0.97, 1.03))
    for rows in range(1, 9):  # measured row counts and the extrapolated ones
        assert model.step_s("k", rows) == pytest.approx(true_step(rows), rel=0.08)


def test_one_row_count_seen_predicts_no_batching_gain():
    model = CostModel()
    for _ in range(3):
        model.observe_step("k", 2, 0.04)
    assert model.step_s("k", 4) == pytest.approx(0.08)  # a line through the origin: conservative


def test_outliers_do_not_move_the_prediction():
    model = CostModel()
    rng = random.Random(2)
    for i in range(200):
        rows = 1 + i % 6
        seconds = true_step(rows) * rng.uniform(0.98, 1.02)
        if i % 10 == 0:
            seconds *= 20  # a stall: page fault, a neighbour's burst
        model.observe_step("k", rows, seconds)
    for rows in range(1, 9):
        assert model.step_s("k", rows) == pytest.approx(true_step(rows), rel=0.05)


def test_keys_are_learned_apart_and_follow_drift():
    model = CostModel()
    for _ in range(40):
        model.observe_step("fast", 1, 0.01)
        model.observe_step("slow", 1, 0.10)
    assert model.step_s("fast", 1) == pytest.approx(0.01)
    assert model.step_s("slow", 1) == pytest.approx(0.10)
    for _ in range(40):  # the machine got busier: recent samples win
        model.observe_step("fast", 1, 0.03)
    assert model.step_s("fast", 1) == pytest.approx(0.03)


def test_prefill_row_length_and_audio_per_step_are_learned():
    model = CostModel(prior_row_steps=50)
    assert model.prefill_s("k", 1) == pytest.approx(2 * model.step_s("k", 1))  # prior: two steps
    assert model.audio_per_step("k") == 0.0 and model.row_steps("k") == 50
    for _ in range(5):
        model.observe_prefill("k", 1, 0.05)
        model.observe_prefill("k", 2, 0.08)
        model.observe_row("k", 34)
        model.observe_audio("k", 0.16)
    assert model.prefill_s("k", 1) == pytest.approx(0.05)
    assert model.prefill_s("k", 3) == pytest.approx(0.11)
    assert model.row_steps("k") == 34 and model.audio_per_step("k") == pytest.approx(0.16)
    curve = model.curve("k", 3)
    assert [p.rows for p in curve] == [1, 2, 3] and all(p.samples == 0 for p in curve)


def test_finishing_cost_and_the_largest_row_count_measured():
    model = CostModel()
    assert model.measured_rows("k") == 0
    assert model.finish_s("k", 1) == pytest.approx(4 * model.step_s("k", 1))  # prior: four steps
    for _ in range(3):
        model.observe_step("k", 1, 0.02)
        model.observe_finish("k", 1, 0.25)  # a finished row's final decode: a dozen steps' worth
    assert model.measured_rows("k") == 1
    model.observe_step("k", 3, 0.05)
    assert model.measured_rows("k") == 3
    assert model.finish_s("k", 1) == pytest.approx(0.25)
