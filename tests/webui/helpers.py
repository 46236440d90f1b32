"""Helpers of the web UI tests."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import soundfile as sf
from nicegui.testing import User

from tests.support.engines import ToneEngine
from tests.support.net import free_port  # noqa: F401 - re-exported to the web UI tests

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "webui"
WAIT_RETRIES = 400  # x 0.1 s: generous, so a slow machine waits longer instead of failing


async def see(user: User, *args, **kwargs) -> None:
    """should_see that waits as long as a slow machine needs (it is not a timing assertion)."""
    await user.should_see(*args, retries=WAIT_RETRIES, **kwargs)


async def not_see(user: User, *args, **kwargs) -> None:
    await user.should_not_see(*args, retries=WAIT_RETRIES, **kwargs)


def one(user: User, marker: str):
    """The single element carrying `marker`."""
    elements = list(user.find(marker=marker).elements)
    assert len(elements) == 1, f"expected one element marked {marker!r}, found {len(elements)}"
    return elements[0]


def texts(user: User, marker: str) -> list[str]:
    return [getattr(e, "text", "") for e in user.find(marker=marker).elements]


def rms_of(data: bytes) -> tuple[float, float]:
    """(seconds, RMS) of an audio file soundfile can read."""
    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return len(samples) / rate, float(np.sqrt(np.mean(samples[:, 0] ** 2))) if len(samples) else 0.0


def tone_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV")
    return buffer.getvalue()


async def wait_until(condition, what: str) -> None:
    """Wait for `condition()` to hold, as long as a slow machine needs (not a timing assertion)."""
    for _ in range(WAIT_RETRIES):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


class HoldSecondSentence(ToneEngine):
    """Speaks at once, except sentences with 'second' in them: those wait until `release` is set.
    With max_batch_size=1 the first sentence of a stream arrives while the second is held."""

    def __init__(self, release, hold_s: float = 60, cloning: bool = False) -> None:
        super().__init__(cloning=cloning)
        self.release = release
        self.hold_s = hold_s

    def run_batch(self, batch, session=None):
        if any("second" in work.text.lower() for work in batch):
            self.release.wait(self.hold_s)
        return super().run_batch(batch, session)
