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



# -- POP909 excerpts and videos cut on their downbeats -----------------------------

def pop909_excerpt(number: int, seconds: float, rng: np.random.Generator) -> Song:
    """Whole bars of POP909 song `number`, from a bar in its middle half, lasting at least `seconds`."""
    from cuesmith.engine.critique.foils import excerpt
    from cuesmith.engine.music.pop909 import load_song

    song = load_song(number).song
    lines = song.bars(song.end_tick)
    first = int(rng.integers(len(lines) // 4, len(lines) // 2))
    last = next(i for i in range(first + 1, len(lines))
                if song.tick_to_seconds(lines[i]) - song.tick_to_seconds(lines[first]) >= seconds)
    return excerpt(song, lines[first], lines[last])


def frame_boundary(t: float, fps: float) -> float:
    """A shot boundary whose first new frame is the frame nearest `t`."""
    return (round(t * fps) - 0.5) / fps


def downbeat_cut_shots(song: Song, rng: np.random.Generator, fps: float, shortest: float = 1.8,
                       longest: float = 4.5) -> list[Shot]:
    """Shots cut on some of `song`'s downbeats (gaps `shortest`..`longest` s) up to its last bar line."""
    downbeats = [song.tick_to_seconds(t) for t, down in song.beats(song.end_tick) if down]
    end = song.tick_to_seconds(song.bars(song.end_tick + 1)[-1]) if downbeats else 0.0
    cuts, last = [], 0.0
    for t in downbeats[1:]:
        if t - last >= shortest and (t - last > longest or rng.random() < 0.5) and end - t >= shortest:
            cuts.append(t)
            last = t
    edges = [0.0] + [frame_boundary(t, fps) for t in cuts] + [end]
    moods = list(MOODS)
    return [Shot(b - a, moods[i % len(moods)], float(rng.uniform(0.05, 0.5))) for i, (a, b) in enumerate(zip(edges, edges[1:]))]
