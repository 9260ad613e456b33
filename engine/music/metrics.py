"""Symbolic music-quality metrics of V-MusProd's tables (SC, PE, PCE, EBR, IOI).

The paper takes them from MusPy (Dong et al. 2020) and Yang & Lerch (2020);
each function below follows the library definition exactly, so our figures
can be laid beside the paper's. For all of them closer to real music is
better, not higher. Drum parts are ignored except where MusPy counts them (EBR).
"""
from __future__ import annotations

import math

import numpy as np

from .score import TICKS_PER_BEAT, Song

# Major and natural-minor scales as pitch-class masks rooted on C.
_MAJOR_SCALE = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1], bool)
_MINOR_SCALE = np.array([1, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0], bool)


def _pitches(song: Song) -> np.ndarray:
    return np.array([n.pitch for p in song.parts if not p.is_drum for n in p.notes], dtype=np.int64)


def _entropy_bits(counts: np.ndarray) -> float:
    total = counts.sum()
    if total < 1:
        return math.nan
    prob = counts[counts > 0] / total
    return float(-(prob * np.log2(prob)).sum())


def scale_consistency(song: Song) -> float:
    """SC: the largest fraction of notes (counted, not timed) inside one of the
    24 major / natural-minor scales (MusPy `scale_consistency`). NaN without notes."""
    pitches = _pitches(song)
    if len(pitches) == 0:
        return math.nan
    pc_counts = np.bincount(pitches % 12, minlength=12)
    scales = np.array([np.roll(s, r) for s in (_MAJOR_SCALE, _MINOR_SCALE) for r in range(12)])
    return float((scales @ pc_counts).max() / len(pitches))


def pitch_entropy(song: Song) -> float:
    """PE: Shannon entropy in bits of the note-count histogram over the 128
    MIDI pitches (MusPy `pitch_entropy`)."""
    return _entropy_bits(np.bincount(_pitches(song), minlength=128))


def pitch_class_entropy(song: Song) -> float:
    """PCE: Shannon entropy in bits of the note-count histogram over the 12
    pitch classes (MusPy `pitch_class_entropy`); at most log2(12) = 3.585."""
    return _entropy_bits(np.bincount(_pitches(song) % 12, minlength=12))


def empty_beat_rate(song: Song) -> float:
    """EBR: fraction of quarter-note beats (counted from tick 0 up to the last
    note end) that no note sounds in (MusPy `empty_beat_rate`). As in MusPy,
    a note touches every beat from the one holding its start to the one
    holding its end, inclusive, and drum parts count."""
    notes = [n for p in song.parts for n in p.notes]
    length = max((n.end for n in notes), default=0)
    if length < 1:
        return math.nan
    n_beats = length // TICKS_PER_BEAT + 1
    # Difference array: +1 at each note's first beat, -1 after its last.
    cover = np.zeros(n_beats + 1, dtype=np.int64)
    starts = np.array([n.start for n in notes]) // TICKS_PER_BEAT
    ends = np.array([n.end for n in notes]) // TICKS_PER_BEAT
    np.add.at(cover, starts, 1)
    np.add.at(cover, ends + 1, -1)
    sounding = np.cumsum(cover[:-1]) > 0
    return float(1.0 - sounding.sum() / n_beats)


def mean_inter_onset_interval(song: Song) -> float:
    """IOI: mean gap in seconds between consecutive note onsets of all
    non-drum notes, chords included as zero gaps (Yang & Lerch's `avg_IOI`:
    `np.mean(np.diff(pretty_midi.PrettyMIDI.get_onsets()))`, which keeps
    duplicate onsets). NaN with fewer than two notes."""
    ticks = np.sort([n.start for p in song.parts if not p.is_drum for n in p.notes])
    if len(ticks) < 2:
        return math.nan
    seconds = np.array([song.tick_to_seconds(t) for t in ticks]) if len(song.tempos) > 1 else (
        ticks * 60.0 / (song.tempos[0].bpm * TICKS_PER_BEAT))
    return float(np.mean(np.diff(seconds)))


def quality_metrics(song: Song) -> dict[str, float]:
    """The five metrics of V-MusProd's tables 2 and 4, keyed SC, PE, PCE, EBR, IOI."""
    return {
        "SC": scale_consistency(song),
        "PE": pitch_entropy(song),
        "PCE": pitch_class_entropy(song),
        "EBR": empty_beat_rate(song),
        "IOI": mean_inter_onset_interval(song),
    }
