"""How close a row of a full batch comes to the same request run alone: equal up to
floating-point rounding (the README's claim), with the bound measured on the tiny model."""

from __future__ import annotations

import dataclasses

import numpy as np

from voxbatch_server.audio.encoding import encode
from voxbatch_server.domain import AudioEncoding
from voxbatch_server.engines.voxcpm.generate import generate

from .conftest import task

TEXTS = [
    "Hi.", "Numbers like 42 are read aloud, too!", "How are you today?", "Batching makes speech faster.",
    "One more row here.", "The eighth row is long enough to matter.", "Ok then.", "A quiet evening at home.",
]


def pcm(samples) -> np.ndarray:
    return np.frombuffer(encode(np.asarray(samples, dtype=np.float32).reshape(-1), 44100, AudioEncoding.PCM_S16LE), "<i2")


def test_a_row_of_an_eight_row_batch_is_within_one_lsb_of_its_run_alone(tiny_engine):
    requests = [
        dataclasses.replace(tiny_engine.prepare(task(text, seed=100 + i, inference_steps=4)).request, max_patches=12 + 2 * i)
        for i, text in enumerate(TEXTS)
    ]
    alone = [generate(tiny_engine._net, [r])[0] for r in requests]
    batched = generate(tiny_engine._net, requests)
    for a, b in zip(alone, batched):
        # Each step agrees to rounding; generation feeds each patch back, so the rounding of the
        # padded batch's matrix products can grow over the steps, but stays within 1e-6 here.
        assert np.abs(a.patches.numpy() - b.patches.numpy()).max() < 1e-5
        assert np.abs(a.audio.numpy() - b.audio.numpy()).max() < 1e-6
        assert np.abs(pcm(a.audio.numpy()).astype(int) - pcm(b.audio.numpy()).astype(int)).max() <= 1
