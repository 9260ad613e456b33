"""Segment-wise decoding (issue 19): a decoder step costs the same in a long cue's last bar as in its first.

In one pass two inputs of the step grew with the cue: the self-attention cache (every token written so far)
and the cross-attention memory (the whole source). Both are bounded here, from the host loop, with the
graphs as they are:

- cache: when it holds `slots` entries the segment ends. The next one is primed: a fresh cache is built by
  running the decoder over BOS and the last tokens already fed (the current bar and `overlap_bars` bars
  before it in every row; one length for the batch, so a row with shorter bars sees a little more), then
  decoding goes on with the last token written. Nothing is written twice and nothing is skipped: the primer
  only rebuilds the cache, and the host's RowState (bars, onsets, chord, the key's and the form's
  constraints) runs on untouched, so the bar count, tempo map, key and repeats carry across the boundary.
  The primer's context rows are the ones the one pass fed (the cue's own bar numbers, progress and
  controls), so the cross-attention window finds the same source bars and the net reads the cue's middle,
  not an opening; only the token positions restart, at 0 with BOS, as in the training crops (BOS first,
  8-16 bars renumbered from 0, at most 768 tokens: a one-pass cue of minutes ran to positions of 10,000).
- memory: a decoder token of bar b sees only the source tokens of bars b-w..b+w and the source's first
  token (the net's `bar_window` w, nets/layers.py `bar_mask`). Each row is given just those, for a
  window of `memory_bars` bars, cut again when a row walks out of it. The masked rest added exactly 0 to
  the attention, so this changes no logit beyond float rounding.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ...music.tokens import TYPE, TokenType
from ...runtime.context import step_context

# Cache slots per segment: a step with 384 cached tokens costs about what the mean step of a 15-bar cue
# does (its accompaniment runs to ~450 tokens); the primer of each restart is the price (see BENCHMARKS.md).
SEGMENT_SLOTS = 384
OVERLAP_BARS = 1  # whole bars before the current one that a restarted segment is primed with
MEMORY_BARS = 8  # bars of queries one cut of the memory serves


@dataclass(frozen=True)
class SegmentConfig:
    slots: int = SEGMENT_SLOTS
    overlap_bars: int = OVERLAP_BARS
    memory_bars: int = MEMORY_BARS


class Segments:
    """What one stage's decode loop has fed the decoder, and the bounded cache and memory it feeds next."""

    def __init__(self, runner, plan, cross: dict, memory_bar: np.ndarray, config: SegmentConfig = SegmentConfig(),
                 capacity: int = SEGMENT_SLOTS):
        self.runner, self.plan, self.config = runner, plan, config
        self.capacity = min(config.slots, capacity)  # tokens a cache holds (the stage's longest sequence, at most)
        self.full_cross, self.full_bar = cross, memory_bar
        self.cross, self.memory_bar = cross, memory_bar  # what the next step reads
        self.window = runner.bar_window
        self.slicing = self.window >= 0 and memory_bar.shape[1] > 1
        self.served = np.full((memory_bar.shape[0], 2), -1)  # per row: first and last query bar of the cut
        self.fed_tokens: deque = deque(maxlen=config.slots)
        self.fed_context: deque = deque(maxlen=config.slots)
        self.restarts = 0

    def record(self, token: np.ndarray, context: np.ndarray) -> None:
        """Record the (batch, ...) token and context rows the next step feeds."""
        self.fed_tokens.append(token.copy())
        self.fed_context.append(context.copy())

    def bound(self, cache: dict, rows) -> dict:
        """The cache for the next step: `cache`, or a primed new one when it is full; the memory cut to the
        rows' bars."""
        if cache_length(cache) >= self.capacity:
            return self._restart(rows)
        query = self.fed_context[-1][:, 0]
        if self.slicing and ((query < self.served[:, 0]) | (query > self.served[:, 1])).any():
            self._cut_memory(query, query)
        return cache

    def _restart(self, rows) -> dict:
        self.restarts += 1
        n = self._primer_length(rows)
        tokens = list(self.fed_tokens)[-n:-1]
        contexts = list(self.fed_context)[-n:]
        first = contexts[0][:, 0]
        bos = np.zeros_like(self.fed_tokens[-1])
        bos[:, TYPE] = TokenType.BOS
        bos_context = np.stack([step_context(int(bar), 0, 0, self.plan.controls, self.plan.n_bars) for bar in first])
        if self.slicing:
            self._cut_memory(first, contexts[-1][:, 0])
        cache = self.runner.empty_cache(len(bos), self.capacity)
        for token, context in zip([bos] + tokens, [bos_context] + contexts[:-1]):
            cache = self.runner.step(token, context, cache, self.cross, self.memory_bar)[2]
        return cache

    def _primer_length(self, rows) -> int:
        """Tokens of history the primer takes (the last one is fed by the loop): the current bar and
        `overlap_bars` before it in every running row, at most half a segment."""
        kinds = np.stack([t[:, TYPE] for t in self.fed_tokens])  # (history, batch)
        wanted = 1
        for b, row in enumerate(rows):
            if row.done:
                continue
            bars = np.flatnonzero(kinds[:, b] == TokenType.BAR)
            start = bars[-1 - self.config.overlap_bars] if len(bars) > self.config.overlap_bars else 0
            wanted = max(wanted, len(kinds) - int(start))
        return min(wanted, self.config.slots // 2)

    def _cut_memory(self, first: np.ndarray, current: np.ndarray) -> None:
        """Per row, the memory tokens queries of bars first..current + memory_bars - 1 may see."""
        self.served = np.stack([first, current + self.config.memory_bars - 1], axis=1)
        keep = [np.flatnonzero((bars >= lo - self.window) & (bars <= hi + self.window)
                               | (np.arange(len(bars)) == 0)) for bars, (lo, hi) in zip(self.full_bar, self.served)]
        length = max(len(k) for k in keep)
        index = np.zeros((len(keep), length), dtype=np.int64)
        self.memory_bar = np.full((len(keep), length), -1, dtype=self.full_bar.dtype)  # -1: padding, masked
        for b, k in enumerate(keep):
            index[b, :len(k)] = k
            self.memory_bar[b, :len(k)] = self.full_bar[b, k]
        self.cross = {name: _rows_take(value, index) for name, value in self.full_cross.items()}


def _rows_take(value: np.ndarray, index: np.ndarray) -> np.ndarray:
    """value (..., batch, heads, memory, dim) with each row's memory axis taken at its own indices."""
    return np.concatenate([np.take(np.take(value, [b], axis=-4), k, axis=-2) for b, k in enumerate(index)], axis=-4)


def cache_length(cache) -> int:
    """Tokens the cache holds (a concatenating graph's caches hold one masked slot besides)."""
    if isinstance(cache, dict):
        return next(iter(cache.values())).shape[-2] - 1
    return cache.length
