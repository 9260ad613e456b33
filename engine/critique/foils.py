"""Music the critique must tell apart from the real thing: excerpts, shifted, scrambled and random notes.

The tests, the benchmark and the soundness tuning (soundness.tune) build these
from POP909 songs:
- `excerpt`: bars of a song from one bar line to another, as a song of its own;
- `played_late`: every note half a beat (or any fraction) late against the notation;
- `pitch_scrambled`: each part's pitches shuffled among its notes (same rhythm,
  same pitch content, so the same key profile);
- `random_notes`: as many notes per part, at uniformly random times, with
  pitches uniform over the part's range and durations/velocities drawn from it.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..music.score import Note, Part, Song, TICKS_PER_BEAT


def excerpt(song: Song, start: int, end: int) -> Song:
    """The notes sounding from tick `start` (a bar line) to `end`, moved to tick 0; tempo map and metre kept."""
    parts = []
    for p in song.parts:
        notes = [Note(max(n.start, start) - start, min(n.end, end) - start, n.pitch, n.velocity)
                 for n in p.notes if n.start < end and n.end > start and n.start >= start]
        parts.append(replace(p, notes=notes))
    tempos = [t for t in song.tempos if t.tick <= start][-1:] + [t for t in song.tempos if start < t.tick < end]
    signatures = ([s for s in sorted(song.time_signatures) if s.tick <= start][-1:]
                  + [s for s in song.time_signatures if start < s.tick < end])
    chords = [replace(c, start=max(c.start, start) - start, end=min(c.end, end) - start)
              for c in song.chords if c.start < end and c.end > start]
    return replace(song, parts=parts, chords=chords, markers=[],
                   tempos=[replace(t, tick=max(0, t.tick - start)) for t in tempos],
                   time_signatures=[replace(s, tick=max(0, s.tick - start)) for s in signatures])


def played_late(song: Song, beats: float = 0.5) -> Song:
    shift = int(round(beats * TICKS_PER_BEAT))
    return replace(song, parts=[replace(p, notes=[Note(n.start + shift, n.end + shift, n.pitch, n.velocity)
                                                  for n in p.notes]) for p in song.parts])


def pitch_scrambled(song: Song, rng: np.random.Generator) -> Song:
    parts = []
    for p in song.parts:
        if p.is_drum or not p.notes:
            parts.append(p)
            continue
        pitches = rng.permutation([n.pitch for n in p.notes])
        parts.append(replace(p, notes=[Note(n.start, n.end, int(q), n.velocity) for n, q in zip(p.notes, pitches)]))
    return replace(song, parts=parts, chords=[])


def random_notes(song: Song, rng: np.random.Generator) -> Song:
    end = max(song.end_tick, 1)
    parts = []
    for p in song.parts:
        if not p.notes:
            parts.append(p)
            continue
        low, high = min(n.pitch for n in p.notes), max(n.pitch for n in p.notes)
        lengths = rng.choice([n.duration for n in p.notes], len(p.notes))
        velocities = rng.choice([n.velocity for n in p.notes], len(p.notes))
        starts = rng.integers(0, end, len(p.notes))
        pitches = rng.integers(low, high + 1, len(p.notes))
        notes = sorted(Note(int(s), int(min(s + d, end + d)), int(q), int(v))
                       for s, d, q, v in zip(starts, lengths, pitches, velocities))
        parts.append(replace(p, notes=notes))
    return replace(song, parts=parts, chords=[])
