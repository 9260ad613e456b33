"""Key, chord and cadence rules in the tokens' field values (numpy only).

Which chords a key allows (every chord tone in the scale; in minor the raised
leading tone only in the dominant chords V, V7 and vii; in major no chord on
the submediant, vi), the closing authentic cadence (V7 then I/i) and the
pitches of a key's scale, as masks over the ROOT/QUALITY/PITCH fields of
`music.tokens`. A family's decode loop constrains its sampling with them
(pipelines/vmusprod/decode.py says why each rule is there).
"""
from __future__ import annotations

import numpy as np

from .score import NO_CHORD
from .tokens import QUALITIES

NO_CHORD_QUALITY = 1 + QUALITIES.index(NO_CHORD)  # the QUALITY field value of "no chord"

SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10, 11)}  # minor: natural + leading tone
SUBMEDIANT = 9  # major: no chord on it (chord_degrees)
LEADING_TONE_ROOTS = (7, 11)  # minor: only V and vii (harmonic minor's dominant chords) raise the 7th
CHORD_TONES = {"M": (0, 4, 7), "m": (0, 3, 7), "M7": (0, 4, 7, 11), "m7": (0, 3, 7, 10), "7": (0, 4, 7, 10),
               "o": (0, 3, 6), "o7": (0, 3, 6, 9), "sus2": (0, 2, 7), "sus4": (0, 5, 7), "+": (0, 4, 8)}


def key_chord_fields(tonic: int, mode: str) -> tuple[np.ndarray, tuple[int, int]]:
    """The (ROOT, QUALITY) field pairs whose chord tones all lie in the key, and the tonic chord's pair."""
    pairs = np.zeros((13, len(QUALITIES) + 1), dtype=bool)
    pairs[0, NO_CHORD_QUALITY] = True
    for q, quality in enumerate(QUALITIES):
        if quality == NO_CHORD:
            continue
        for degree in chord_degrees(mode):
            scale = chord_scale(mode, degree)
            pairs[1 + (tonic + degree) % 12, 1 + q] = all((degree + t) % 12 in scale for t in CHORD_TONES[quality])
    tonic_quality = "M" if mode == "major" else "m"
    return pairs, (1 + tonic, 1 + QUALITIES.index(tonic_quality))


def chord_degrees(mode: str) -> list[int]:
    """Roots (semitones above the tonic) a chord of the key may have: in major not the submediant (vi),
    the relative minor's tonic chord, which tipped major plans into the relative minor."""
    return [degree for degree in range(12) if not (mode == "major" and degree == SUBMEDIANT)]


def chord_scale(mode: str, degree: int) -> set[int]:
    """Scale steps a chord on `degree` (semitones above the tonic) may use: in minor, the raised 7th
    only in the dominant chords (V, V7, vii), the natural 7th elsewhere."""
    steps = set(SCALES[mode])
    if mode == "minor":
        steps.discard(10 if degree in LEADING_TONE_ROOTS else 11)
    return steps


def cadence_fields(tonic: int, mode: str, n_bars: int) -> tuple[tuple[int, int], ...]:
    """(ROOT, QUALITY) fields of the closing bars: V7 then I (i in minor) — an authentic cadence
    (one tonic bar for a one-bar plan)."""
    dominant = (1 + (tonic + 7) % 12, 1 + QUALITIES.index("7"))
    home = (1 + tonic, 1 + QUALITIES.index("M" if mode == "major" else "m"))
    return ((dominant, home) if n_bars >= 2 else (home,))


def key_pitch_fields(tonic: int, mode: str) -> np.ndarray:
    """(129,) bool over PITCH field values (1 + MIDI pitch): the pitches of the key's scale."""
    scale = {(tonic + step) % 12 for step in SCALES[mode]}
    allowed = np.zeros(129, dtype=bool)
    allowed[1:] = [pitch % 12 in scale for pitch in range(128)]
    return allowed
