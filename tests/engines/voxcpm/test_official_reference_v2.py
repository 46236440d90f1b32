"""Our VoxCPM2 path reproduces the official one on the same weights, row by row in one batch.

official_reference_v2.npz holds what the official OpenBMB/VoxCPM code (VoxCPM2Model at upstream
commit 616d3d3, `_generate_with_prompt_cache(..., retry_badcase=False)`, float32 on the CPU,
one request at a time) produced for the tiny VoxCPM2 checkpoint: plain text, voice design,
reference-only cloning, continuation, and reference + continuation (+ instructions), unary and
streamed, and one case at temperature 0. make_official_reference_v2.py (next to this file) wrote
it; it needs an official checkout, so CI only compares against the committed numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from voxbatch_server.domain import EngineParams, ReferenceAudio, SpeechTask
from voxbatch_server.engines.voxcpm.generate import generate

from .make_official_reference_v2 import clip

REFERENCE = np.load(Path(__file__).with_name("official_reference_v2.npz"))
CASES = json.loads(str(REFERENCE["cases"]))


def case_task(case: dict) -> SpeechTask:
    reference = prompt = None
    if case.get("reference"):
        reference = ReferenceAudio(clip("reference"), 16000, "")
    if case.get("prompt_text"):
        prompt = ReferenceAudio(clip("prompt"), 16000, case["prompt_text"])
    if prompt is not None and reference is None:  # continuation alone: the reference field with its transcript
        reference, prompt = prompt, None
    params = EngineParams(seed=case["seed"], cfg_value=case.get("cfg"), inference_steps=case.get("steps"),
                          temperature=case.get("temperature"))
    return SpeechTask(case["text"], "default", params, reference, bool(case.get("stream")),
                      instructions=case.get("instructions", ""), prompt=prompt)


def test_tokenizer_matches_the_official_wrapper(tiny_v2_engine):
    texts = json.loads(str(REFERENCE["tok_texts"]))
    assert [tiny_v2_engine.model.tokenizer(t) for t in texts] == json.loads(str(REFERENCE["tokens"]))


@pytest.fixture(scope="module")
def batched(tiny_v2_engine):
    """Every case in one batch: all five modes, streamed and not, different lengths and seeds."""
    pieces: dict[int, list[np.ndarray]] = {}
    works = [tiny_v2_engine.prepare(case_task(c)) for c in CASES]
    rows = generate(
        tiny_v2_engine._net, [w.request for w in works],
        on_piece=lambda i, samples: pieces.setdefault(i, []).append(samples.numpy()),
    )
    return works, rows, pieces


UNARY = [i for i, c in enumerate(CASES) if not c.get("stream")]
STREAMED = [i for i, c in enumerate(CASES) if c.get("stream")]


def test_the_cases_cover_every_mode():
    modes = {(bool(c.get("reference")), bool(c.get("prompt_text")), bool(c.get("instructions")), bool(c.get("stream")))
             for c in CASES}
    for stream in (False, True):
        assert {(False, False, False, stream), (False, False, True, stream), (True, False, False, stream),
                (False, True, False, stream)} <= modes
        assert any(m[0] and m[1] and m[3] == stream for m in modes)
    assert any(c.get("temperature") == 0.0 for c in CASES)


@pytest.mark.parametrize("case", UNARY)
def test_latents_and_48khz_audio_match_the_official_implementation(batched, tiny_v2_engine, case):
    _, rows, _ = batched
    row = rows[case]
    np.testing.assert_allclose(row.patches.numpy(), REFERENCE[f"patches{case}"], atol=1e-5)
    audio = row.audio.numpy()
    assert len(audio) == int(REFERENCE[f"audio_len{case}"]) == len(row.patches) * 7680  # 160 ms at 48 kHz
    np.testing.assert_allclose(audio[:4096], REFERENCE[f"audio_head{case}"], atol=1e-6)
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) == pytest.approx(float(REFERENCE[f"audio_rms{case}"]), rel=1e-4)
    assert tiny_v2_engine.info.native_sample_rate == 48000


@pytest.mark.parametrize("case", STREAMED)
def test_streamed_audio_matches_the_official_streaming_and_our_unary_audio(batched, case):
    """Upstream streams VoxCPM2 by decoding each patch once with carried decoder state, as we do.
    One difference: for a continuation it starts the decoder from silence, while its unary path
    decodes the last prompt patches in front. We prime the streaming decoder like the unary path,
    so our streamed audio equals our (and upstream's) unary audio; for continuation cases we
    therefore compare upstream's stream only after the decoder has forgotten its start."""
    _, rows, pieces = batched
    stream = np.concatenate(pieces[case])
    np.testing.assert_array_equal(stream, rows[case].audio.numpy())
    assert len(stream) == int(REFERENCE[f"stream_len{case}"])
    np.testing.assert_allclose(stream[-4096:], REFERENCE[f"stream_tail{case}"], atol=1e-6)
    if not CASES[case].get("prompt_text"):
        np.testing.assert_allclose(stream[:4096], REFERENCE[f"stream_head{case}"], atol=1e-6)
        assert np.sqrt(np.mean(stream.astype(np.float64) ** 2)) == pytest.approx(float(REFERENCE[f"stream_rms{case}"]), rel=1e-4)


def test_rows_of_the_mixed_batch_equal_their_runs_alone(batched, tiny_v2_engine):
    """Every row already matches the official code run alone; the busiest rows (reference and
    continuation together, unary and streamed) also match our own run alone exactly."""
    works, rows, _ = batched
    busiest = [i for i, c in enumerate(CASES) if c.get("reference") and c.get("prompt_text")]
    assert len(busiest) == 2
    for i in busiest:
        alone = generate(tiny_v2_engine._net, [works[i].request])[0]
        np.testing.assert_allclose(rows[i].patches.numpy(), alone.patches.numpy(), atol=1e-5)
        np.testing.assert_allclose(rows[i].audio.numpy(), alone.audio.numpy(), atol=1e-6)
