"""Batched generation equals unbatched generation, row by row, and the engine's guards hold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from voxbatch_server.engines.voxcpm.generate import generate

from .conftest import reference, task

TEXTS = [
    "Hi.",
    "Numbers like 42 are read aloud, too!",
    "How are you today? Fine, thank you, and you?",
    "Batching requests makes speech faster when many people speak at once.",
]


def requests(engine, texts=TEXTS, seeds=(11, 22, 33, 44), **kw):
    return [engine.prepare(task(t, seed=s, **kw)).request for t, s in zip(texts, seeds)]


@pytest.fixture(scope="module")
def alone_and_batched(tiny_engine):
    reqs = requests(tiny_engine)
    alone = [generate(tiny_engine._net, [r])[0] for r in reqs]
    batched = generate(tiny_engine._net, reqs)
    return reqs, alone, batched


def test_rows_have_different_lengths_so_rows_leave_the_batch_early(alone_and_batched):
    reqs, alone, _ = alone_and_batched
    caps = [r.max_patches for r in reqs]
    assert len(set(caps)) == len(caps)
    assert [len(a.patches) for a in alone] == caps


def test_each_row_of_a_batch_equals_that_request_alone(alone_and_batched):
    _, alone, batched = alone_and_batched
    for a, b in zip(alone, batched):
        np.testing.assert_allclose(b.patches.numpy(), a.patches.numpy(), atol=1e-5)
        np.testing.assert_allclose(b.audio.numpy(), a.audio.numpy(), atol=1e-6)


def test_padding_never_leaks_between_rows(tiny_engine):
    short = requests(tiny_engine, ["Hi."], (5,))[0]
    with_short = generate(tiny_engine._net, [short, requests(tiny_engine, ["Ok."], (6,))[0]])[0]
    with_long = generate(tiny_engine._net, [short, requests(tiny_engine, [TEXTS[3] * 2], (7,))[0]])[0]
    np.testing.assert_allclose(with_short.patches.numpy(), with_long.patches.numpy(), atol=1e-5)


def test_seed_and_cfg_are_per_row(tiny_engine):
    same_seed = [tiny_engine.prepare(task(TEXTS[1], seed=3, cfg_value=c)).request for c in (1.0, 3.0)]
    rows = generate(tiny_engine._net, same_seed)
    assert not np.allclose(rows[0].patches.numpy(), rows[1].patches.numpy(), atol=1e-3)
    for req, row in zip(same_seed, rows):
        np.testing.assert_allclose(generate(tiny_engine._net, [req])[0].patches.numpy(), row.patches.numpy(), atol=1e-5)


def test_temperature_zero_is_deterministic_whatever_the_seed(tiny_engine):
    cold = [generate(tiny_engine._net, [r])[0] for r in requests(tiny_engine, [TEXTS[1]] * 2, (1, 2), temperature=0.0)]
    np.testing.assert_array_equal(cold[0].audio.numpy(), cold[1].audio.numpy())
    warm = generate(tiny_engine._net, requests(tiny_engine, [TEXTS[1]] * 2, (1, 2)))
    assert not np.allclose(warm[0].audio.numpy(), warm[1].audio.numpy())


@pytest.mark.parametrize("generation", ["1.5", "2"])
@pytest.mark.parametrize("cloned", [False, True], ids=["plain", "continuation"])
def test_streamed_pieces_join_into_exactly_the_unary_audio(tiny_engine, tiny_v2_engine, generation, cloned):
    """Each patch is decoded once with the decoder's causal state carried over: no window, no
    seams (upstream 1.5 re-decoded a 3-patch window per step, whose pieces differed slightly)."""
    engine = tiny_engine if generation == "1.5" else tiny_v2_engine
    ref = reference() if cloned else None
    unary = generate(engine._net, [engine.prepare(task(TEXTS[1], seed=9, reference=ref)).request])[0]
    pieces: list[np.ndarray] = []
    req = engine.prepare(task(TEXTS[1], seed=9, reference=ref, stream=True)).request
    row = generate(engine._net, [req], on_piece=lambda i, s: pieces.append(s.numpy()))[0]
    assert len(pieces) == len(row.patches)
    assert all(len(p) == engine._net.patch_samples for p in pieces)
    np.testing.assert_array_equal(np.concatenate(pieces), unary.audio.numpy())


@pytest.mark.parametrize("generation", ["1.5", "2"])
def test_decoding_step_by_step_with_carried_state_equals_decoding_at_once(tiny_engine, tiny_v2_engine, generation):
    vae = (tiny_engine if generation == "1.5" else tiny_v2_engine)._net.audio_vae
    z = torch.randn(2, 16, 60, generator=torch.Generator().manual_seed(0)) * 0.5
    with torch.inference_mode():
        whole = vae.decode(z)[:, 0]
        carries, pieces = vae.decoder.carries(2, "cpu"), []
        for start in range(0, 60, 4):
            audio, carries = vae.decoder.step(z[:, :, start : start + 4], carries)
            pieces.append(audio[:, 0])
    assert whole.shape[1] == 60 * vae.decode_hop
    np.testing.assert_allclose(torch.cat(pieces, dim=1).numpy(), whole.numpy(), atol=1e-6)


def test_a_cancelled_row_is_dropped_and_the_others_finish_unchanged(tiny_engine):
    reqs = requests(tiny_engine, TEXTS[1:3], (4, 5))
    rows = generate(tiny_engine._net, reqs, cancelled=lambda i: i == 0)
    assert rows[0] is None
    np.testing.assert_allclose(rows[1].patches.numpy(), generate(tiny_engine._net, [reqs[1]])[0].patches.numpy(), atol=1e-5)


def test_runaway_generation_is_capped_and_flagged(tiny_engine, tmp_path):
    from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine
    from voxbatch_server.engines.voxcpm.random_checkpoint import write_checkpoint

    work = tiny_engine.prepare(task(TEXTS[0], seed=1))
    capped = tiny_engine.run_batch([work])[0]
    assert capped.length_capped
    assert len(capped.samples) == work.request.max_patches * tiny_engine._net.patch_samples
    stopping = VoxCPMEngine(write_checkpoint(tmp_path / "early", stop="early"), device="cpu")
    early = stopping.run_batch([stopping.prepare(task(TEXTS[0], seed=1))])[0]
    assert not early.length_capped
    assert len(early.samples) == 4 * stopping._net.patch_samples  # stops at the first step allowed


def test_reference_prompts_are_encoded_once(tiny_engine, monkeypatch):
    calls = []
    original = tiny_engine._net.audio_vae.encode
    monkeypatch.setattr(tiny_engine._net.audio_vae, "encode", lambda x: calls.append(1) or original(x))
    ref = reference("A different transcript. ")
    first = tiny_engine.prepare(task(TEXTS[1], reference=ref))
    second = tiny_engine.prepare(task(TEXTS[2], reference=ref))
    assert len(calls) == 1
    assert first.request.prompt_feats is second.request.prompt_feats
    assert first.request.prompt_feats.shape[1:] == (4, 16)


def test_cloned_rows_batch_with_plain_rows(tiny_engine):
    ref = reference()
    reqs = [tiny_engine.prepare(task(TEXTS[1], seed=2, reference=ref)).request, *requests(tiny_engine, TEXTS[2:3], (3,))]
    batched = generate(tiny_engine._net, reqs)
    for req, row in zip(reqs, batched):
        np.testing.assert_allclose(generate(tiny_engine._net, [req])[0].patches.numpy(), row.patches.numpy(), atol=1e-5)


@pytest.mark.parametrize("joining_text", ["Ok.", TEXTS[3] + " " + TEXTS[2]], ids=["shorter-prompt", "longer-prompt"])
def test_a_row_joining_a_running_batch_gets_the_audio_it_gets_alone(tiny_engine, joining_text):
    """Continuous batching: rows admitted between steps (with shorter or longer prompts than the
    running rows, so the caches are re-aligned) change nothing for anyone."""
    first = requests(tiny_engine, TEXTS[1:3], (8, 9))
    joining = requests(tiny_engine, [joining_text], (10,))[0]
    calls = []

    def admit(room):
        calls.append(room)
        return [joining] if len(calls) == 3 else []

    rows = generate(tiny_engine._net, first, admit=admit, max_rows=4)
    assert len(rows) == 3 and calls[:3] == [2, 2, 2]
    for req, row in zip([*first, joining], rows):
        np.testing.assert_allclose(row.patches.numpy(), generate(tiny_engine._net, [req])[0].patches.numpy(), atol=1e-5)


def test_rows_are_handed_over_as_soon_as_they_finish(tiny_engine):
    reqs = requests(tiny_engine, [TEXTS[0], TEXTS[1]], (1, 2))  # the first row is shorter
    handed: list[int] = []
    rows = generate(tiny_engine._net, reqs, on_done=lambda i, row, peak_rows: handed.append((i, len(handed), peak_rows)))
    # The short row is handed over first, while the long one still runs; both shared steps.
    assert handed == [(0, 0, 2), (1, 1, 2)]
    assert all(r is not None for r in rows)


def test_a_bad_case_is_retried_alone_with_the_next_seed_while_its_neighbours_run_on(tiny_engine):
    """The tiny model never stops, so every try runs on to the bad-case length: with retries the
    row runs three times (seeds 5, 6, 7) and keeps the last try, while the long row beside it
    never waits and gets exactly its audio alone."""
    from dataclasses import replace

    short, long = requests(tiny_engine, [TEXTS[0], TEXTS[3]], (5, 9))
    retried = replace(short, badcase_patches=short.max_patches - 10, retries=2)
    handed: list[tuple[int, int]] = []
    rows = generate(tiny_engine._net, [retried, long], on_done=lambda i, row, peak: handed.append((i, row.retries)))
    assert 3 * short.max_patches < long.max_patches and handed == [(0, 2), (1, 0)]
    assert rows[0].retries == 2 and rows[0].capped
    last_try = generate(tiny_engine._net, [replace(short, seed=7)])[0]
    np.testing.assert_allclose(rows[0].patches.numpy(), last_try.patches.numpy(), atol=1e-5)
    np.testing.assert_allclose(rows[1].patches.numpy(), generate(tiny_engine._net, [long])[0].patches.numpy(), atol=1e-5)


def test_retry_badcase_defaults_follow_upstream(tiny_engine, tmp_path):
    from voxbatch_server.errors import InvalidInput

    def retries(**kw):
        return tiny_engine.prepare(task(TEXTS[1], **kw)).request.retries

    assert retries(seed=None) == 2  # unseeded, temperature 1: a retry can differ
    assert retries(seed=3) == 0 and retries(seed=None, temperature=0.0) == 0 and retries(seed=None, stream=True) == 0
    assert retries(seed=3, retry_badcase=True) == 2 and retries(seed=None, retry_badcase=False) == 0
    with pytest.raises(InvalidInput, match="retry_badcase cannot apply to streamed audio"):
        tiny_engine.prepare(task(TEXTS[1], seed=None, stream=True, retry_badcase=True))
    # A row that stops by itself before the bad-case length is never retried.
    from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine
    from voxbatch_server.engines.voxcpm.random_checkpoint import write_checkpoint

    stopping = VoxCPMEngine(write_checkpoint(tmp_path / "early", stop="early"), device="cpu")
    audio = stopping.run_batch([stopping.prepare(task(TEXTS[0], seed=None))])[0]
    assert audio.badcase_retries == 0 and not audio.length_capped
