"""Melody / accompaniment split of arbitrary MIDI by the skyline algorithm.

Uitdenbogerd & Zobel's skyline, as V-MusProd applies it: snap notes to the
16th-note grid, keep the highest pitch starting at each onset as the melody,
and cut each melody note where the next melody note starts so the melody is
monophonic. Every other note is accompaniment.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Optional

from .score import TICKS_PER_16TH, Note, Part, Song


def quantize_note(note: Note, grid: int = TICKS_PER_16TH) -> Note:
    """`note` with start and end rounded to the nearest grid line; at least one grid step long."""
    start = int(round(note.start / grid)) * grid
    end = max(start + grid, int(round(note.end / grid)) * grid)
    return Note(start, end, note.pitch, note.velocity)


def skyline(notes: Iterable[Note], grid: int = TICKS_PER_16TH) -> tuple[list[Note], list[Note]]:
    """(melody, accompaniment) notes; both quantised to `grid`, sorted by start."""
    quantized = sorted(quantize_note(n, grid) for n in notes)
    top_at_onset: dict[int, Note] = {}
    for note in quantized:
        best = top_at_onset.get(note.start)
        if best is None or note.pitch > best.pitch:
            top_at_onset[note.start] = note
    tops = sorted(top_at_onset.values())
    melody = [
        Note(n.start, min(n.end, nxt.start), n.pitch, n.velocity) if nxt.start < n.end else n
        for n, nxt in zip(tops, tops[1:])
    ] + tops[-1:]
    taken = Counter(tops)  # one copy per melody note; a doubled copy stays accompaniment
    accompaniment = []
    for note in quantized:
        if taken[note]:
            taken[note] -= 1
        else:
            accompaniment.append(note)
    return melody, accompaniment


def split_melody(song: Song, parts: Optional[list[str]] = None) -> tuple[Part, Part]:
    """(melody Part, accompaniment Part) from the non-drum parts of `song` (or only those named)."""
    sources = [p for p in song.parts if not p.is_drum and (parts is None or p.name in parts)]
    melody, accompaniment = skyline(n for p in sources for n in p.notes)
    program = sources[0].program if sources else 0
    return Part("melody", melody, program=program), Part("accompaniment", accompaniment, program=program)
