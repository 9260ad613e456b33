"""Does a cue sound like a song? The measures of issue 12, on a `Song` and its bar grid.

    melody_bar_share   bars (after the first `skip`) in which a melody note sounds
    rhythm_recurrence  bars with onsets whose onset rhythm (16th offsets in the bar) recurs in another bar
    leap_share         melody steps (top note of each onset to the next) larger than 7 semitones
    mean_interval      mean |step| of the melody, semitones
    pitch_span         lowest and highest note of every part
    cut_events         share of locked cuts with a chord onset and an accompaniment (bass) onset on them

Real songs (POP909, issue 12): 76% of bars with a melody (96% over 12 bars
from the melody's entry), melody rhythm recurring in 45-53% of bars,
accompaniment 55-61%, leaps over 7 semitones 3-4%, mean interval 2.3.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .score import TICKS_PER_16TH, Part, Song

LEAP = 7  # semitones: a larger melody step is a leap


def bar_spans(song: Song, bar_ticks: Optional[list[int]] = None, end: Optional[int] = None) -> list[tuple[int, int]]:
    """(start, end) ticks of every bar: the given bar lines, else the song's."""
    starts = list(bar_ticks) if bar_ticks is not None else song.bars()
    last = end if end is not None else starts[-1] + song.time_signature_at(starts[-1]).ticks_per_bar
    return list(zip(starts, starts[1:] + [last]))


def melody_bar_share(song: Song, spans: list[tuple[int, int]], skip: int = 2) -> float:
    melody = song.part("melody")
    notes = melody.notes if melody is not None else []
    later = spans[skip:]
    if not later:
        return float("nan")
    return float(np.mean([any(n.start < b and n.end > a for n in notes) for a, b in later]))


def onset_rhythms(part: Optional[Part], spans: list[tuple[int, int]]) -> list[tuple[int, ...]]:
    """Per bar, the sorted 16th offsets of its onsets (empty for a bar without onsets)."""
    starts = sorted({n.start for n in part.notes}) if part is not None else []
    return [tuple((t - a) // TICKS_PER_16TH for t in starts if a <= t < b) for a, b in spans]


def rhythm_recurrence(part: Optional[Part], spans: list[tuple[int, int]]) -> float:
    rhythms = [r for r in onset_rhythms(part, spans) if r]
    if not rhythms:
        return float("nan")
    counts = {r: rhythms.count(r) for r in set(rhythms)}
    return float(np.mean([counts[r] > 1 for r in rhythms]))


def melody_steps(song: Song) -> np.ndarray:
    """Semitone steps between the top notes of successive melody onsets."""
    melody = song.part("melody")
    if melody is None or not melody.notes:
        return np.zeros(0)
    top: dict[int, int] = {}
    for n in melody.notes:
        top[n.start] = max(top.get(n.start, 0), n.pitch)
    pitches = np.array([top[t] for t in sorted(top)])
    return np.diff(pitches)


def leap_share(song: Song) -> float:
    steps = melody_steps(song)
    return float(np.mean(np.abs(steps) > LEAP)) if len(steps) else float("nan")


def mean_interval(song: Song) -> float:
    steps = melody_steps(song)
    return float(np.mean(np.abs(steps))) if len(steps) else float("nan")


def pitch_span(song: Song) -> tuple[int, int]:
    pitches = [n.pitch for p in song.parts if not p.is_drum for n in p.notes]
    return (min(pitches), max(pitches)) if pitches else (0, 0)


def cut_events(song: Song, cut_ticks: list[int], bass_part: str = "accompaniment") -> float:
    """Share of `cut_ticks` with a chord starting on them and a note of `bass_part` starting on them."""
    if not cut_ticks:
        return float("nan")
    chord_starts = {c.start for c in song.chords}
    part = song.part(bass_part)
    note_starts = {n.start for n in part.notes} if part is not None else set()
    return float(np.mean([t in chord_starts and t in note_starts for t in cut_ticks]))


def melody_entry_bar(song: Song, spans: list[tuple[int, int]]) -> Optional[int]:
    melody = song.part("melody")
    if melody is None or not melody.notes:
        return None
    first = min(n.start for n in melody.notes)
    return next(i for i, (a, b) in enumerate(spans) if first < b)


def excerpt(song: Song, spans: list[tuple[int, int]], first: int, n_bars: int) -> tuple[Song, list[tuple[int, int]]]:
    """Bars first..first+n_bars-1 of `song` (notes starting there; times kept), with their spans."""
    kept = spans[first:first + n_bars]
    a, b = kept[0][0], kept[-1][1]
    parts = [Part(p.name, [n for n in p.notes if a <= n.start < b], program=p.program, channel=p.channel,
                  is_drum=p.is_drum) for p in song.parts]
    out = Song(tempos=song.tempos, time_signatures=song.time_signatures, parts=parts,
               chords=[c for c in song.chords if a <= c.start < b], key=song.key)
    return out, kept


def cue_measures(song: Song, spans: list[tuple[int, int]], cut_ticks: Optional[list[int]] = None) -> dict:
    low, high = pitch_span(song)
    measures = {"melody_bars": melody_bar_share(song, spans),
                "melody_recurrence": rhythm_recurrence(song.part("melody"), spans),
                "accompaniment_recurrence": rhythm_recurrence(song.part("accompaniment"), spans),
                "leaps": leap_share(song), "mean_interval": mean_interval(song), "lowest": low, "highest": high}
    if cut_ticks is not None:
        measures["cut_events"] = cut_events(song, cut_ticks)
    return measures


def real_excerpts(numbers, bars: int = 12) -> list[tuple[Song, list[tuple[int, int]]]]:
    """POP909 songs (by number): `bars` bars from the bar where the melody enters, with their spans."""
    from .dataset import song_tokens
    from .tokens import decode

    out = []
    for number in numbers:
        sequences = song_tokens(number)
        song = decode(sequences["chord+melody"], "chord+melody")
        song.parts = song.parts + decode(sequences["accompaniment"], "accompaniment").parts
        spans = bar_spans(song)
        entry = melody_entry_bar(song, spans)
        if entry is not None and entry + bars <= len(spans):
            out.append(excerpt(song, spans, entry, bars))
    return out
