"""The compiled whole decode step (inductor on the CPU here) gives what the eager path gives.

One bucket of four rows keeps CI's compile time to one compilation per model (batches of fewer
rows run in four slots, the free ones masked, so the masking path runs too)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from voxbatch_server.engines.voxcpm import compiled as compiled_step
from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine
from voxbatch_server.engines.voxcpm.generate import generate
from voxbatch_server.settings import Settings, SettingsError

from . import test_official_reference as official
from .test_batched_generation import TEXTS, requests


# Inductor settings that only make compiling cheaper, which is what CI pays for (two compiles of
# the whole step, about a minute each with the defaults): no SIMD code generation (half the
# time), and no pattern rewriting, epilogue fusion or reordering for locality (a fresh compile
# of the tiny step: 60 s -> 43 s). They change how the kernels are built, not what the step
# computes, and what these tests prove lies in the step itself: its masking, slots, static
# shapes and guards. The CPU benchmark measures the defaults.
CHEAP_COMPILE = {("cpp", "simdlen"): 0, ("", "pattern_matcher"): False, ("", "epilogue_fusion"): False,
                 ("", "reorder_for_locality"): False}


@pytest.fixture(scope="module", autouse=True)
def cheap_compile():
    from torch._inductor import config

    def holder(section):
        return getattr(config, section) if section else config

    saved = {key: getattr(holder(key[0]), key[1]) for key in CHEAP_COMPILE}
    for (section, name), value in CHEAP_COMPILE.items():
        setattr(holder(section), name, value)
    yield
    for (section, name), value in saved.items():
        setattr(holder(section), name, value)


@pytest.fixture(scope="module")
def compile_cache(tmp_path_factory):
    import os

    saved = {k: os.environ.get(k) for k in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")}
    folder = tmp_path_factory.mktemp("compile-cache")
    compiled_step.use_cache_dir(folder)
    yield folder
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def compiled_engine(tiny_dir, compile_cache):
    engine = VoxCPMEngine(tiny_dir, device="cpu")
    engine.compiled = compiled_step.compile_decode_step(engine._net, "cpu", max_rows=4, buckets=(4,))
    assert engine._net.compiled_step is engine.compiled
    return engine


@pytest.fixture(scope="module")
def official_cases(compiled_engine):
    """The official-reference cases, all four in one batch, through the compiled step."""
    step = compiled_engine.compiled
    before, graphs = step.calls, compiled_graphs()
    rows, pieces = official.generate_cases(compiled_engine)
    # Every step of the batch ran compiled (no step fell back to eager).
    assert step.calls - before == max(len(row.patches) for row in rows)
    assert compiled_graphs() == graphs  # and start-up had compiled it: no request pays for compiling
    return rows, pieces


def compiled_graphs() -> int:
    from torch._dynamo.utils import counters

    return counters["stats"]["unique_graphs"]


@pytest.mark.parametrize("case", range(len(official.CASES)))
def test_compiled_step_matches_the_official_implementation(official_cases, case):
    official.test_latents_and_audio_match_the_official_implementation(official_cases, case)


@pytest.mark.parametrize("case", [i for i, c in enumerate(official.CASES) if c.get("stream")])
def test_compiled_step_streams_as_the_official_implementation(official_cases, case):
    official.test_streamed_audio_equals_the_official_unary_audio(official_cases, case)


def test_rows_joining_and_leaving_get_the_eager_audio(compiled_engine, tiny_engine):
    first = requests(compiled_engine, TEXTS[1:3], (8, 9))
    joining = requests(compiled_engine, ["Ok."], (10,))[0]
    calls = []

    def admit(room):
        calls.append(room)
        return [joining] if len(calls) == 3 else []

    rows = generate(compiled_engine._net, first, admit=admit, max_rows=4)
    for req, row in zip([*first, joining], rows):
        eager = generate(tiny_engine._net, [req])[0]
        np.testing.assert_allclose(row.patches.numpy(), eager.patches.numpy(), atol=1e-5)
        np.testing.assert_allclose(row.audio.numpy(), eager.audio.numpy(), atol=1e-6)


def test_rows_beyond_the_buckets_and_other_step_counts_run_eager(compiled_engine, tiny_engine):
    """Five rows do not fit the one bucket of four: they run eager until one leaves, then the
    rest move to four slots and run compiled. A step count other than the compiled one runs
    eager throughout. Either way nothing compiles while a request waits."""
    step = compiled_engine.compiled
    reqs = requests(compiled_engine, TEXTS[:1] * 5, (1, 2, 3, 4, 5))
    steps_of = [r.max_patches for r in reqs]
    before, graphs = step.calls, compiled_graphs()
    rows = generate(compiled_engine._net, reqs)
    assert step.calls - before == max(steps_of) - min(steps_of)  # compiled once the first row left
    np.testing.assert_allclose(rows[4].patches.numpy(), generate(tiny_engine._net, reqs[4:])[0].patches.numpy(), atol=1e-5)
    four_steps = requests(compiled_engine, TEXTS[1:2], (6,), inference_steps=4)
    before = step.calls
    row = generate(compiled_engine._net, four_steps)[0]
    assert step.calls == before and compiled_graphs() == graphs
    np.testing.assert_allclose(row.patches.numpy(), generate(tiny_engine._net, four_steps)[0].patches.numpy(), atol=1e-5)


def test_the_captured_step_runs_every_row_even_when_some_may_wait(compiled_engine):
    """A compiled step costs the same whatever it masks, so pausing would only delay rows."""
    reqs = requests(compiled_engine, TEXTS[1:3], (8, 9))
    reported = []
    generate(compiled_engine._net, reqs, may_wait=lambda: {0}, on_step=lambda rows, *rest: reported.append((rows, rest[-1])))
    assert reported[0] == (2, 0)


def test_compiled_code_is_kept_for_the_next_start(compiled_engine, compile_cache):
    assert compiled_engine.compiled.buckets == (4,)
    assert any(path.is_file() for path in compile_cache.rglob("*")), "nothing was written to the compile cache"


def test_compile_auto_means_on_with_cuda_only():
    assert compiled_step.compile_wanted("auto", "cuda") and compiled_step.compile_wanted("auto", "cuda:1")
    assert not compiled_step.compile_wanted("auto", "cpu")
    assert compiled_step.compile_wanted("on", "cpu") and not compiled_step.compile_wanted("off", "cuda")


def test_compile_setting_is_validated():
    assert Settings().compile == "auto"
    assert Settings.from_argv(["--compile", "off"]).compile == "off"
    assert Settings.from_argv([], {"VOXBATCH_COMPILE": "on"}).compile == "on"
    with pytest.raises(SettingsError, match="compile must be one of auto, on, off"):
        Settings.from_argv(["--compile", "yes"])


def test_a_failed_compile_serves_eager_with_auto_and_stops_the_start_with_on(tiny_dir, tmp_path, monkeypatch, caplog):
    """As `auto` on a GPU whose capture fails (compile_decode_step captures there): the server
    starts, serves eager, and its log, server info and metrics say so."""
    import httpx

    from tests.support.net import free_port, parse_metrics
    from tests.support.server import ServerThread
    from voxbatch import Client

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(compiled_step, "compile_decode_step", broken)
    with caplog.at_level(logging.WARNING):
        engine = VoxCPMEngine(tiny_dir, device="cpu", compile="auto")
    assert engine.compiled is None and engine.info.decode_step == "eager"  # auto on a CPU: not even tried
    monkeypatch.setattr(compiled_step, "compile_wanted", lambda mode, device: True)
    engine = VoxCPMEngine(tiny_dir, device="cpu", compile="auto", compile_cache_dir=tmp_path / "cache")
    assert engine.compiled is None and engine._net.compiled_step is None
    fallback = [r.getMessage() for r in caplog.records if "serving eager instead" in r.getMessage()]
    assert len(fallback) == 1 and "no C++ compiler" in fallback[0]
    assert engine.info.decode_step == "eager-fallback"
    with ServerThread(engine, cache_mb=0, metrics_port=free_port()) as server, Client(server.target) as client:
        assert client.server_info().decode_step == "eager-fallback"
        assert client.synthesize("Hi.", seed=1, inference_steps=2).duration_seconds > 0  # served, eager
        scraped = parse_metrics(httpx.get(f"http://127.0.0.1:{server.running.metrics_port}/metrics", timeout=5).text)
    assert scraped['voxbatch_decode_step_info{mode="eager-fallback"}'] == 1
    with pytest.raises(compiled_step.CompileFailed, match="--compile on: compiling the decode step failed: no C\\+\\+ compiler"):
        VoxCPMEngine(tiny_dir, device="cpu", compile="on")


def test_compiled_step_matches_the_official_voxcpm2(tiny_v2_dir, compile_cache):
    """VoxCPM2's DiT takes two prefix tokens and its residual LM has no rotary embedding: every
    case of its official reference, in one batch of 11 rows in a bucket of 16, compiled."""
    from . import test_official_reference_v2 as official_v2

    engine = VoxCPMEngine(tiny_v2_dir, device="cpu")
    step = compiled_step.compile_decode_step(engine._net, "cpu", max_rows=16, buckets=(16,))
    graphs = compiled_graphs()
    works = [engine.prepare(official_v2.case_task(c)) for c in official_v2.CASES]
    rows = generate(engine._net, [w.request for w in works])
    assert compiled_graphs() == graphs and step.calls == max(len(row.patches) for row in rows)
    for case in official_v2.UNARY:
        np.testing.assert_allclose(rows[case].patches.numpy(), official_v2.REFERENCE[f"patches{case}"], atol=1e-5)
        np.testing.assert_allclose(rows[case].audio.numpy()[:4096], official_v2.REFERENCE[f"audio_head{case}"], atol=1e-6)
