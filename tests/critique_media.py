"""Music for critique tests: the same simple score locked to a plan, shifted, or at an unrelated tempo."""
from __future__ import annotations

import numpy as np

from cuesmith.engine.music.score import Note, Part, Song, TempoChange, TimeSignature
from media import MOODS, Shot

ROOTS = (48, 53, 55, 50, 57, 52)  # C F G D A E: a new chord at each section


def clip_shots(seed: int, n: int = 4, shortest: float = 1.8, longest: float = 3.4) -> list[Shot]:
    rng = np.random.default_rng(seed)
    moods = list(MOODS)
    return [Shot(float(rng.uniform(shortest, longest)), moods[(seed + i) % len(moods)],
                 float(rng.uniform(0.05, 0.6))) for i in range(n)]


def pulse_part(beats: list[tuple[int, bool]], sections: set[int], shift: int = 0) -> Part:
    """A chord on every beat (downbeats louder); the chord moves at each section start."""
    notes, chord = [], 0
    for tick, down in beats:
        if tick in sections and tick > 0:
            chord += 1
        root = ROOTS[chord % len(ROOTS)]
        velocity = 112 if down else 72
        for interval in (0, 4, 7):
            notes.append(Note(tick + shift, tick + shift + 400, root + interval, velocity))
    return Part("pulse", notes)


def locked_song(plan, shift_beats: float = 0.0) -> Song:
    song = plan.empty_song()
    sections = set(plan.cut_ticks)
    song.parts = [pulse_part(plan.beat_ticks(), sections, int(round(shift_beats * 480)))]
    song.markers = []  # the critique must judge notes, not the plan's cut markers
    return song


def constant_song(duration: float, bpm: float) -> Song:
    song = Song(tempos=[TempoChange(0, bpm)], time_signatures=[TimeSignature(0, 4, 4)])
    end = int(song.seconds_to_tick(duration)) + 1
    beats = song.beats(end)
    sections = {t for i, (t, _) in enumerate(beats) if i % 8 == 0}
    song.parts = [pulse_part(beats, sections)]
    return song

