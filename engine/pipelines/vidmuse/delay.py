"""MusicGen's delay pattern over the codec's codebooks, in numpy (training and runtime share it).

Codebook k is shifted right by k steps ([0, 1, 2, 3] for EnCodec-32k's 4 codebooks): `interleave`
turns codes (K, T) into (K, T + K - 1), the cells no code reaches holding the special id;
`deinterleave` undoes it exactly. One decoder step then predicts codebook 0 of frame t together
with codebook 1 of frame t - 1, and so on.
"""
from __future__ import annotations

import numpy as np


def delays(codebooks: int) -> np.ndarray:
    return np.arange(codebooks)


def interleave(codes: np.ndarray, special: int) -> np.ndarray:
    """(K, T) codes -> (K, T + K - 1) delayed codes, `special` where no code falls."""
    codes = np.asarray(codes)
    k, t = codes.shape
    out = np.full((k, t + k - 1), special, dtype=np.int64)
    for row in range(k):
        out[row, row:row + t] = codes[row]
    return out


def deinterleave(delayed: np.ndarray) -> np.ndarray:
    """(K, S) delayed codes -> (K, S - K + 1) codes: the inverse of `interleave`."""
    delayed = np.asarray(delayed)
    k = delayed.shape[0]
    t = delayed.shape[1] - (k - 1)
    return np.stack([delayed[row, row:row + t] for row in range(k)])


def valid_cells(frames: int, steps: int, codebooks: int = 4) -> np.ndarray:
    """(K, steps) bool: True where step s of codebook k holds a real code (0 <= s - k < frames)."""
    s = np.arange(steps)[None, :] - delays(codebooks)[:, None]
    return (s >= 0) & (s < frames)
