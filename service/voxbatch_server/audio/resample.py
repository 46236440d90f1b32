"""Sample-rate conversion with a proper anti-aliasing filter."""

from __future__ import annotations

from functools import lru_cache
from math import gcd

import numpy as np
from scipy.signal import firwin, resample_poly

# SciPy's default polyphase filter is short for large up/down ratios (44.1 <-> 48 kHz style
# conversions), leaving a transition band kilohertz wide. This one puts the band edge just
# below the lower Nyquist frequency and is long enough to reach about 80 dB past it.
_TAPS_PER_PHASE = 64
_CUTOFF = 0.92


@lru_cache(maxsize=32)
def _filter(up: int, down: int) -> np.ndarray:
    rate = max(up, down)
    taps = firwin(2 * _TAPS_PER_PHASE * rate + 1, _CUTOFF / rate, window=("kaiser", 8.6))
    return taps


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase FIR resampling, float32 in and out."""
    if source_rate == target_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    g = gcd(source_rate, target_rate)
    up, down = target_rate // g, source_rate // g
    out = resample_poly(samples.astype(np.float64), up, down, window=_filter(up, down))
    return np.clip(out, -1.0, 1.0).astype(np.float32)
