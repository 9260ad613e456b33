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


# -- a playable chord part -----------------------------------------------------------------------------------

BASS_LOW = 48  # C3: the root sounds in C3..B3, or an octave lower under low upper voices
UPPER_LOW, UPPER_HIGH = 55, 76  # G3..E5: the upper voices stay here, under the melody where one sounds
UNDER_MELODY_LOW = UPPER_LOW - 12  # G2: how low the upper voices may go to stay under a low melody
CHORD_VELOCITY = 64  # under the melody (POP909's melody averages ~80)
RELEASE_TICKS = 60  # a 32nd at 480 PPQ: lifted before the next chord, so repeated tones re-strike


def voice_chords(chords, velocity: int = CHORD_VELOCITY, release: int = RELEASE_TICKS, melody=()) -> list:
    """Block chords for `chords` (music.score.Chord): the upper chord tones in G3..E5, each voicing the one
    nearest the last (smooth voice leading), below the lowest `melody` note (music.score.Note) sounding with
    the chord (down to G2 if they must: the block had 16% of its notes at or above the melody, in its
    register; under a melody that dips below where a voicing fits, about E3, the lowest one), the root in
    C3..B3 below them (an octave lower if need be); released shortly before the next."""
    from .score import Note

    notes, upper = [], None
    chords = sorted(chords, key=lambda c: c.start)
    for chord, after in zip(chords, chords[1:] + [None]):
        stop = chord.end if after is None else min(chord.end, after.start)  # a chord sounds until the next
        if chord.is_none or stop <= chord.start:
            continue
        classes = [(chord.root + t) % 12 for t in CHORD_TONES[chord.quality]]
        ceiling = min((n.pitch - 1 for n in melody if n.start < stop and n.end > chord.start), default=UPPER_HIGH)
        upper = nearest_voicing(classes[1:] if len(classes) > 3 else classes, upper, ceiling)
        end = max(chord.start + 1, stop - min(release, (stop - chord.start) // 4))
        bass = BASS_LOW + chord.root
        while bass >= upper[0]:  # (upper voices from G2 up: the root stays at or above G1)
            bass -= 12
        notes += [Note(chord.start, end, pitch, velocity) for pitch in sorted({bass, *upper})]
    return notes


def nearest_voicing(classes: list[int], previous, ceiling: int = UPPER_HIGH) -> list[int]:
    """Pitches of `classes` (one each) in UPPER_LOW..UPPER_HIGH and at most `ceiling` (from UNDER_MELODY_LOW
    when none fits there), closest to `previous` (close position at the bottom of the range when there is none)."""
    high = min(UPPER_HIGH, ceiling)
    options = close_voicings(classes, UPPER_LOW, high) or close_voicings(classes, UNDER_MELODY_LOW, high) \
        or close_voicings(classes, UNDER_MELODY_LOW, UPPER_HIGH)
    if previous is None:
        return min(options, key=lambda v: (v[0], v[-1]))
    return min(options, key=lambda v: (sum(abs(a - b) for a, b in zip(v, previous)), v[0]))


def close_voicings(classes: list[int], low: int = UPPER_LOW, high: int = UPPER_HIGH) -> list[list[int]]:
    """Every inversion of `classes` in close position (within an octave and a bit) in low..high, each rising."""
    voicings = []
    for turn in range(len(classes)):
        order = classes[turn:] + classes[:turn]
        for base in range(low, high + 1):
            if base % 12 != order[0]:
                continue
            pitches = [base]
            for pc in order[1:]:
                pitches.append(pitches[-1] + (pc - pitches[-1]) % 12 or 12)
            if pitches[-1] <= high:
                voicings.append(pitches)
    return voicings
