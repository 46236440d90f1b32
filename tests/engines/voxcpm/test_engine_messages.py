"""What the VoxCPM engine tells a client about a sentence it cannot take."""

from __future__ import annotations

import pytest

from voxbatch_server.errors import InvalidInput

from .conftest import reference, task


def test_a_sentence_too_long_for_the_model_is_refused_naming_only_what_was_sent(tiny_engine):
    long_sentence = "Numbers like forty two are read aloud, every single one of them. " * 12
    with pytest.raises(InvalidInput) as alone:
        tiny_engine.prepare(task(long_sentence))
    assert "the sentence needs" in str(alone.value) and "reference" not in str(alone.value)
    with pytest.raises(InvalidInput, match="the sentence and reference need"):
        tiny_engine.prepare(task(long_sentence, reference=reference()))
