"""Long texts of many short sentences, and texts in scripts without spaces, on a real server with
the tone engine (whose audio length follows the text, so every sentence can be accounted for)."""

from __future__ import annotations

import pytest

from tests.support.engines import ToneEngine
from tests.support.server import ServerThread
from voxbatch import Client


@pytest.fixture(scope="module")
def default_server():
    """The default settings: 5000 characters, a queue of 256 work items of up to 200 characters."""
    engine = ToneEngine(languages=("zh", "en"))  # the text is Chinese
    with ServerThread(engine, cache_mb=0) as server:
        yield server, engine


def test_a_long_text_of_many_short_sentences_is_served_on_an_idle_server(default_server):
    server, engine = default_server
    text = " ".join(f"Go {i}." for i in range(637))  # 637 sentences
    assert 4900 < len(text) <= 5000
    before = len(engine.batches)
    with Client(server.target) as client:
        audio = client.synthesize(text, encoding="pcm_s16le")
    items = [t for batch in engine.batches[before:] for t in batch]
    assert 25 <= len(items) <= 50 and all(len(t) <= 200 for t in items)
    assert " ".join(items) == text  # every sentence, once, in order
    assert audio.duration_seconds > 0


def test_stream_chunks_are_work_items_of_whole_sentences_with_coherent_spans(default_server):
    server, _ = default_server
    text = "你好。再见。" + "这是第三句话，很短。" * 30 + " Last one."
    with Client(server.target) as client:
        chunks = list(client.stream(text))
    finals = [c for c in chunks if c.final]
    assert len(finals) == 1 and finals[0] is chunks[-1]
    spans = []
    for c in chunks:
        if not spans or spans[-1] != (c.sentence_index, c.text_start, c.text_end):
            spans.append((c.sentence_index, c.text_start, c.text_end))
    assert [i for i, _, _ in spans] == list(range(len(spans))) and {c.sentence_count for c in chunks} == {len(spans)}
    assert text[spans[0][1] : spans[0][2]] == "你好。"  # the first sentence alone, split without a space
    assert text[spans[1][1]].startswith("再")
    assert all(end <= nxt for (_, _, end), (_, nxt, _) in zip(spans, spans[1:]))
    assert text[spans[-1][1] : spans[-1][2]].endswith("Last one.")
    assert 3 <= len(spans) < 10  # thirty short sentences were grouped
