from __future__ import annotations

import numpy as np
import pytest

from voxbatch_server.cache import ResultCache, cache_key
from voxbatch_server.domain import EngineAudio, EngineParams, SpeechTask
from voxbatch_server.settings import Settings, SettingsError


def test_flags_override_environment_which_overrides_defaults():
    s = Settings.from_argv(["--port", "6000"], {"VOXBATCH_PORT": "7000", "VOXBATCH_MAX_BATCH_SIZE": "4"})
    assert (s.port, s.max_batch_size, s.batch_window_ms) == (6000, 4, 50)


def test_every_problem_is_reported_at_once_with_what_is_accepted():
    with pytest.raises(SettingsError) as error:
        Settings.from_argv(["--batch-window-ms", "5", "--max-batch-size", "0"], {"VOXBATCH_ENGINE": "nope"})
    message = str(error.value)
    assert "batch_window_ms must be 10-100, not 5" in message
    assert "max_batch_size must be 1-256, not 0" in message
    assert "engine must be one of piper" in message


def test_scheduler_settings_come_from_flags_and_environment_and_are_checked():
    s = Settings.from_argv(
        ["--scheduler", "greedy", "--stream-margin-ms", "500", "--fair-slowdown", "2"],
        {"VOXBATCH_BATCH_WINDOW_MODE": "fixed", "VOXBATCH_MAX_QUEUED_PER_CALLER": "8"},
    )
    assert (s.scheduler, s.stream_margin_ms, s.batch_window_mode, s.max_queued_per_caller) == ("greedy", 500, "fixed", 8)
    assert (s.fair_slowdown, Settings().fair_slowdown) == (2.0, 1.5)
    assert (Settings().scheduler, Settings().batch_window_mode) == ("streaming", "adaptive")
    with pytest.raises(SettingsError) as error:
        Settings.from_argv(
            ["--scheduler", "fifo", "--stream-margin-ms", "-1", "--fair-slowdown", "0.5"], {"VOXBATCH_BATCH_WINDOW_MODE": "slow"}
        )
    message = str(error.value)
    assert "scheduler must be one of streaming, greedy, not 'fifo'" in message
    assert "stream_margin_ms must be 0-10000, not -1" in message
    assert "batch_window_mode must be one of adaptive, fixed" in message
    assert "fair_slowdown must be 0 (off) or 1-100, not 0.5" in message


def test_malformed_values_name_their_source():
    with pytest.raises(SettingsError, match="VOXBATCH_PORT: expected int, got 'abc'"):
        Settings.from_argv([], {"VOXBATCH_PORT": "abc"})
    with pytest.raises(SettingsError, match="VOXBATCH_LOG_JSON"):
        Settings.from_argv([], {"VOXBATCH_LOG_JSON": "maybe"})


def test_missing_model_dir_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="is not a folder"):
        Settings(model_dir=tmp_path / "missing")


def audio(n):
    return EngineAudio(np.zeros(n, dtype=np.float32), 16000)


def test_cache_key_changes_with_everything_that_shapes_the_audio():
    base = SpeechTask("hello", "joe", EngineParams())
    keys = {
        cache_key("piper", "m", base),
        cache_key("piper", "m2", base),
        cache_key("piper", "m", SpeechTask("hello!", "joe", EngineParams())),
        cache_key("piper", "m", SpeechTask("hello", "ann", EngineParams())),
        cache_key("piper", "m", SpeechTask("hello", "joe", EngineParams(speaking_rate=1.5))),
        cache_key("piper", "m", SpeechTask("hello", "joe", EngineParams(seed=3))),
    }
    assert len(keys) == 6
    assert cache_key("piper", "m", base) == cache_key("piper", "m", SpeechTask("hello", "joe", EngineParams()))


def test_cache_evicts_least_recently_used_within_its_byte_bound():
    cache = ResultCache(max_bytes=3 * 4000)
    for name in "abc":
        cache.put(name, audio(1000))
    cache.get("a")
    cache.put("d", audio(1000))
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("d") is not None
    assert cache.size_bytes <= cache.max_bytes
    cache.put("huge", audio(10_000))
    assert cache.get("huge") is None


def test_a_queue_too_small_for_the_longest_text_is_refused_at_start_up():
    with pytest.raises(SettingsError, match="max_queue_size 8 cannot hold the longest text: 5000 characters make up to 52"):
        Settings(max_queue_size=8)
    assert Settings(max_queue_size=8, max_text_chars=400).max_queue_size == 8  # 400 characters: 8 items at most


def test_an_explicit_default_and_an_omitted_parameter_share_a_cache_key():
    defaults = {"temperature": 1.0, "cfg_value": 2.0, "inference_steps": 10}
    omitted = SpeechTask("Hello there.", "v", EngineParams(seed=7))
    explicit = SpeechTask("Hello there.", "v", EngineParams(seed=7, temperature=1.0, inference_steps=10))
    other = SpeechTask("Hello there.", "v", EngineParams(seed=7, temperature=0.5))
    key = cache_key("voxcpm", "m", omitted, defaults)
    assert cache_key("voxcpm", "m", explicit, defaults) == key
    assert cache_key("voxcpm", "m", other, defaults) != key


def test_only_requests_that_determine_their_audio_are_cacheable():
    from voxbatch_server.engines.voxcpm.engine import VoxCPMEngine

    def voxcpm(**params):
        return VoxCPMEngine.deterministic(None, SpeechTask("Hi.", "v", EngineParams(**params)))

    assert not voxcpm() and not voxcpm(temperature=1.0)  # the seed is drawn at random
    assert voxcpm(seed=3) and voxcpm(temperature=0.0)
