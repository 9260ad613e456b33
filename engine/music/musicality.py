"""Does a cue sound like a song? The measures of issue 12, on a `Song` and its bar grid.

    melody_bar_share   bars (after the first `skip`) in which a melody note sounds
    rhythm_recurrence  bars with onsets whose onset rhythm (16th offsets in the bar) recurs in another bar
    leap_share         melody steps (top note of each onset to the next) larger than 7 semitones
    mean_interval      mean |step| of the melody, semitones
    pitch_span         lowest and highest note of every part
    cut_events         share of locked cuts with a chord onset and an accompaniment (bass) onset on them
    share_above_melody notes of a part (the accompaniment) that start above the melody note sounding then
    melody_on_top      16ths with a melody note in which no accompaniment note sounds above it
    held_over          melody notes still sounding at the next melody onset
    last_onset         notes, span and top pitch of the last onset of a piece

Real songs (POP909, issue 12): 76% of bars with a melody (96% over 12 bars
from the melody's entry), melody rhythm recurring in 45-53% of bars,
accompaniment 55-61%, leaps over 7 semitones 3-4%, mean interval 2.3;
701-800 from the melody's entry: 13% of accompaniment notes above the
melody, the melody on top in 74% of its 16ths, 0.7% of melody notes held
over the next; song endings: 2 notes spanning 4 semitones at the median.
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
    return {**measures, **heard_measures(song, spans)}


def heard_measures(song: Song, spans: list[tuple[int, int]]) -> dict:
    """Is the melody heard: the accompaniment under it, the melody one line, a last onset like a song's end."""
    notes, span, top = last_onset(song)
    return {"above_melody": share_above_melody(song), "melody_on_top": melody_on_top(song, spans),
            "held_over": held_over(song), "last_onset_notes": notes, "last_onset_span": span, "last_onset_top": top}


def real_songs(numbers) -> list[Song]:
    """POP909 songs (by number) as the tokens describe them: melody, accompaniment, chords."""
    from .dataset import song_tokens
    from .tokens import decode

    songs = []
    for number in numbers:
        sequences = song_tokens(number)
        song = decode(sequences["chord+melody"], "chord+melody")
        song.parts = song.parts + decode(sequences["accompaniment"], "accompaniment").parts
        songs.append(song)
    return songs


def real_excerpts(numbers, bars: int = 12) -> list[tuple[Song, list[tuple[int, int]]]]:
    """POP909 songs (by number): `bars` bars from the bar where the melody enters, with their spans."""
    out = []
    for song in real_songs(numbers):
        spans = bar_spans(song)
        entry = melody_entry_bar(song, spans)
        if entry is not None and entry + bars <= len(spans):
            out.append(excerpt(song, spans, entry, bars))
    return out


# -- is the melody heard (issue 12: the melody was buried) -------------------------------------------------------

def sounding_melody(song: Song, tick: int) -> Optional[int]:
    """The highest melody pitch sounding at `tick`, or None."""
    melody = song.part("melody")
    pitches = [n.pitch for n in (melody.notes if melody else []) if n.start <= tick < n.end]
    return max(pitches) if pitches else None


def share_above_melody(song: Song, part_name: str = "accompaniment") -> float:
    """Share of `part_name`'s notes that start while a melody note sounds and lie above it."""
    part = song.part(part_name)
    heard = [(n.pitch, sounding_melody(song, n.start)) for n in (part.notes if part else [])]
    heard = [(p, m) for p, m in heard if m is not None]
    return float(np.mean([p > m for p, m in heard])) if heard else float("nan")


def melody_on_top(song: Song, spans: list[tuple[int, int]], parts: tuple[str, ...] = ("accompaniment",)) -> float:
    """Share of the 16ths where a melody note sounds in which no note of `parts` sounds above it."""
    others = [n for p in song.parts if p.name in parts for n in p.notes]
    on_top = []
    for a, b in spans:
        for tick in range(a, b, TICKS_PER_16TH):
            melody = sounding_melody(song, tick)
            if melody is not None:
                on_top.append(all(n.pitch <= melody for n in others if n.start <= tick < n.end))
    return float(np.mean(on_top)) if on_top else float("nan")


def held_over(song: Song) -> float:
    """Share of melody notes (but the last onset's) still sounding when the next melody onset starts."""
    melody = song.part("melody")
    starts = sorted({n.start for n in melody.notes}) if melody else []
    following = dict(zip(starts, starts[1:]))
    held = [n.end > following[n.start] for n in (melody.notes if melody else []) if n.start in following]
    return float(np.mean(held)) if held else float("nan")


def last_onset(song: Song, parts: tuple[str, ...] = ("melody", "accompaniment")) -> tuple[int, int, int]:
    """Notes starting at the last onset of `parts`, their span in semitones and the top pitch (0s if silent)."""
    notes = [n for p in song.parts if p.name in parts for n in p.notes]
    if not notes:
        return 0, 0, 0
    last = max(n.start for n in notes)
    pitches = [n.pitch for n in notes if n.start == last]
    return len(pitches), max(pitches) - min(pitches), max(pitches)
