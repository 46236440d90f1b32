"""Reference clips for the saved-voice tests."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf


def clip(seconds: float = 1.5, rate: int = 16000, pitch: float = 220.0) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    samples = (0.3 * np.sin(2 * np.pi * pitch * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="WAV")
    return buffer.getvalue()
