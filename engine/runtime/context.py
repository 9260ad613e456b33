"""The per-token context rows the nets read beside the tokens (numpy only).

    bar       bar index from the start of the piece (or crop)
    beat      beat of the token's position in its bar
    tempo     tempo bin + 1 of the token's bar (0 before the first bar)
    progress  bar * PROGRESS_BINS // n_bars: where in the piece the token is
              (the paper's timing encoding, on a bar scale)
    density, strength, mode, register, section_start
              the `control_ids` bins of the token's bar (the explicit bridge)

Training (engine/training/data.py) and the runtime decode loop build these
rows with the same functions, so the two cannot drift apart.
"""
from __future__ import annotations

import numpy as np

from ..music.controls import CONTROL_FIELDS
from ..music.tokens import metrical_context

CONTEXT_FIELDS = ("bar", "beat", "tempo", "progress") + CONTROL_FIELDS
N_CONTEXT = len(CONTEXT_FIELDS)
MAX_BEATS = 16
PROGRESS_BINS = 16


def context_rows(tokens: np.ndarray, bar_controls: np.ndarray, n_bars: int) -> np.ndarray:
    """(T, N_CONTEXT) int64 context of a token sequence that starts at bar 0.

    `bar_controls` is (n_bars, len(CONTROL_FIELDS)) from `control_ids`.
    """
    meter = metrical_context(tokens)
    bar = np.minimum(meter["bar"], max(n_bars - 1, 0))
    return np.concatenate([
        np.stack([bar, np.minimum(meter["beat"], MAX_BEATS - 1), meter["tempo"],
                  progress_bin(bar, n_bars)], axis=1),
        bar_controls[bar],
    ], axis=1).astype(np.int64)


def progress_bin(bar, n_bars: int):
    return np.asarray(bar) * PROGRESS_BINS // max(n_bars, 1)


def step_context(bar: int, beat: int, tempo: int, bar_controls: np.ndarray, n_bars: int) -> np.ndarray:
    """The context row of one new token (the decode loop's version of `context_rows`)."""
    bar = min(bar, max(n_bars - 1, 0))
    head = [bar, min(beat, MAX_BEATS - 1), tempo, int(progress_bin(bar, n_bars))]
    return np.array(head + list(bar_controls[bar]), dtype=np.int64)


assert len(CONTROL_FIELDS) == 6
