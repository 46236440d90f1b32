"""Sample-rate conversion with a proper anti-aliasing filter."""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from math import ceil, gcd

import numpy as np
from scipy.signal import firwin, resample_poly

# SciPy's default polyphase filter is short for large up/down ratios (44.1 <-> 48 kHz style
# conversions), leaving a transition band kilohertz wide. This one puts the band edge just
# below the lower Nyquist frequency and is long enough to reach about 80 dB past it.
_TAPS_PER_PHASE = 64
_CUTOFF = 0.92
# The filter has 2 * 64 * max(up, down) + 1 taps. Rates in common use reduce to at most 1280
# phases (22.05 -> 192 kHz); an odd rate such as 191999 Hz would need 24 million taps (190 MB,
# seconds of CPU, kept by the cache), so such ratios are approximated within this many phases.
_MAX_PHASES = 2048


@lru_cache(maxsize=32)
def _filter(up: int, down: int) -> np.ndarray:
    rate = max(up, down)
    taps = firwin(2 * _TAPS_PER_PHASE * rate + 1, _CUTOFF / rate, window=("kaiser", 8.6))
    return taps


def _ratio(source_rate: int, target_rate: int) -> tuple[int, int] | None:
    """(up, down) with at most _MAX_PHASES phases: exact when the rates allow, else the closest
    fraction (off by far less than an audible pitch change); None for absurd ratios."""
    g = gcd(source_rate, target_rate)
    up, down = target_rate // g, source_rate // g
    if max(up, down) <= _MAX_PHASES:
        return up, down
    ratio = Fraction(target_rate, source_rate)
    denominator = _MAX_PHASES if ratio <= 1 else int(_MAX_PHASES / ratio)
    if denominator < 1:
        return None
    approx = ratio.limit_denominator(denominator)
    return (approx.numerator, approx.denominator) if approx.numerator >= 1 else None


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Polyphase FIR resampling, float32 in and out; the output has ceil(n * target / source)
    samples."""
    if source_rate == target_rate or samples.size == 0:
        return samples.astype(np.float32, copy=False)
    length = ceil(len(samples) * target_rate / source_rate)
    ratio = _ratio(source_rate, target_rate)
    if ratio is None:  # e.g. a 1 Hz reference clip: no filter is worth building
        positions = np.arange(length) * (source_rate / target_rate)
        out = np.interp(positions, np.arange(len(samples)), samples.astype(np.float64))
    else:
        up, down = ratio
        out = resample_poly(samples.astype(np.float64), up, down, window=_filter(up, down))
        if len(out) != length:  # an approximated ratio: fit the exact length
            out = out[:length] if len(out) > length else np.pad(out, (0, length - len(out)))
    return np.clip(out, -1.0, 1.0).astype(np.float32)
