"""MusicGen's delay pattern over the codec's codebooks, in numpy (training and runtime share it).

Codebook k is shifted right by k steps: `interleave` turns codes (K, T) into (K, T + K - 1),
the cells no code reaches holding the special id; `deinterleave` undoes it exactly. One decoder
step then predicts codebook 0 of frame t together with codebook 1 of frame t - 1, and so on.
"""
from __future__ import annotations

import numpy as np

DELAYS = (0, 1, 2, 3)


def interleave(codes: np.ndarray, special: int, delays=DELAYS) -> np.ndarray:
    """(K, T) codes -> (K, T + max delay) delayed codes, `special` where no code falls."""
    codes = np.asarray(codes)
    k, t = codes.shape
    out = np.full((k, t + max(delays)), special, dtype=np.int64)
    for row, delay in enumerate(delays):
        out[row, delay:delay + t] = codes[row]
    return out


def deinterleave(delayed: np.ndarray, delays=DELAYS) -> np.ndarray:
    """(K, S) delayed codes -> (K, S - max delay) codes: the inverse of `interleave`."""
    delayed = np.asarray(delayed)
    t = delayed.shape[1] - max(delays)
    return np.stack([delayed[row, delay:delay + t] for row, delay in enumerate(delays)])


def valid_cells(frames: int, steps: int, delays=DELAYS) -> np.ndarray:
    """(K, steps) bool: True where step s of codebook k holds a real code (0 <= s - delay < frames)."""
    s = np.arange(steps)[None, :] - np.asarray(delays)[:, None]
    return (s >= 0) & (s < frames)
