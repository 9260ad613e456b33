"""Compound event tokens for the chord, melody and accompaniment stages (V-MusProd).

Every token is one row of `N_FIELDS` small integers (a "compound word"); the nets
embed each field and sum the embeddings. Value 0 of every field means "does not
apply to this token type", so an all-zero row is PAD.

    field     BOS/EOS  BAR                POSITION        CHORD            NOTE
    type      1 / 2    3                  4               5                6
    meter     0        1 + METERS index   0               0                0
    tempo     0        1 + tempo bin      0               0                0
    position  0        0                  1 + 16th in bar 0                0
    root      0        0                  0               1 + pitch class  0
                                                          (0 for N)
    quality   0        0                  0               1 + index in CHORD_QUALITIES + (N,)
    pitch     0        0                  0               0                1 + MIDI pitch
    duration  0        0                  0               16ths (1..max)   16ths (1..max)
    velocity  0        0                  0               0                1 + velocity bin

A sequence is BOS, then for every bar of the song a BAR token followed by the
bar's events grouped by onset: one POSITION token, then chords before notes,
notes by pitch (then end, velocity), then EOS. Every stage of a song gets the same BAR tokens (the
bar count comes from the whole song), so stages line up bar by bar.

The paper's Rhythm token is our BAR/POSITION pair; its Note (pitch, duration)
and Chord (root, quality) tokens are ours, plus a velocity bin on notes and a
duration on chords (so chords need not be contiguous). Tempo and metre live on
BAR tokens: the tempo in effect at the bar start, log-binned, and the time
signature. `metrical_context` spreads bar, beat and tempo to every token for
the Bar/Beat/Tempo embeddings.

Lossless round trip: `decode(encode(q, stage), stage)` gives back exactly the
notes (start, end, pitch, velocity) of the stage's parts, the chords (for
stages with chords) and the time signatures of `q = quantize(song)`. Tempo is
per bar and binned (within half a bin, about 2%), so it is not exact.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from enum import IntEnum
from typing import Optional

import numpy as np

from ..errors import CuesmithError
from .score import (CHORD_QUALITIES, NO_CHORD, TICKS_PER_16TH, Chord, Note, Part, Song,
                    TempoChange, TimeSignature)

TOKENIZER_VERSION = "1"  # bump when a change alters encode's output (cache keys use it)

FIELDS = ("type", "meter", "tempo", "position", "root", "quality", "pitch", "duration", "velocity")
N_FIELDS = len(FIELDS)
TYPE, METER, TEMPO, POSITION, ROOT, QUALITY, PITCH, DURATION, VELOCITY = range(N_FIELDS)

QUALITIES = CHORD_QUALITIES + (NO_CHORD,)
# Supported time signatures; bars of n quarters cover POP909's irregular bars.
METERS = tuple((n, 4) for n in range(1, 9)) + ((3, 8), (6, 8), (9, 8), (12, 8))

MELODY_PART = "melody"
ACCOMPANIMENT_PART = "accompaniment"


class TokenType(IntEnum):
    PAD = 0
    BOS = 1
    EOS = 2
    BAR = 3
    POSITION = 4
    CHORD = 5
    NOTE = 6


@dataclass(frozen=True)
class StageSpec:
    chords: bool  # encode Song.chords
    parts: tuple[str, ...]  # encode the notes of these parts (merged, decoded into parts[0])


STAGES = {
    "chord": StageSpec(chords=True, parts=()),
    "melody": StageSpec(chords=False, parts=(MELODY_PART,)),
    "accompaniment": StageSpec(chords=False, parts=(ACCOMPANIMENT_PART,)),
    # the accompaniment stage's source: chords merged with the melody
    "chord+melody": StageSpec(chords=True, parts=(MELODY_PART,)),
}


@dataclass(frozen=True)
class TokenVocab:
    """Vocabulary size of every field (`sizes`, in `FIELDS` order, counting the 0 'n/a' value)."""

    max_duration: int = 64  # 16ths: four 4/4 bars; quantize truncates longer notes
    velocity_bins: int = 16  # equal-width bins over 0..127, decoded to the bin centre
    tempo_bins: int = 48  # log-spaced centres from tempo_min to tempo_max (about 3.9% apart)
    tempo_min: float = 40.0
    tempo_max: float = 240.0
    meters: tuple[tuple[int, int], ...] = METERS

    @property
    def max_bar_16ths(self) -> int:
        return max(n * 16 // d for n, d in self.meters)

    @property
    def sizes(self) -> tuple[int, ...]:
        return (len(TokenType), 1 + len(self.meters), 1 + self.tempo_bins, 1 + self.max_bar_16ths,
                1 + 12, 1 + len(QUALITIES), 1 + 128, 1 + self.max_duration, 1 + self.velocity_bins)

    # -- value <-> bin ------------------------------------------------------
    def velocity_bin(self, velocity: int) -> int:
        return min(max(velocity, 0) * self.velocity_bins // 128, self.velocity_bins - 1)

    def velocity_value(self, bin_index: int) -> int:
        width = 128 / self.velocity_bins
        return min(127, max(1, int(bin_index * width + width / 2)))

    def tempo_bin(self, bpm: float) -> int:
        step = math.log(self.tempo_max / self.tempo_min) / (self.tempo_bins - 1)
        index = round(math.log(max(bpm, 1e-3) / self.tempo_min) / step)
        return min(max(index, 0), self.tempo_bins - 1)

    def tempo_value(self, bin_index: int) -> float:
        step = math.log(self.tempo_max / self.tempo_min) / (self.tempo_bins - 1)
        return round(self.tempo_min * math.exp(bin_index * step), 3)

    def meter_index(self, ts: TimeSignature) -> int:
        try:
            return self.meters.index((ts.numerator, ts.denominator))
        except ValueError:
            supported = ", ".join(f"{n}/{d}" for n, d in self.meters)
            raise CuesmithError(f"time signature {ts.numerator}/{ts.denominator} at tick {ts.tick} "
                                f"is not supported by the tokens (supported: {supported})") from None


VOCAB = TokenVocab()


# -- quantize ----------------------------------------------------------------

def quantize(song: Song, grid: int = TICKS_PER_16TH, vocab: TokenVocab = VOCAB) -> Song:
    """A copy of `song` that the tokens represent exactly.

    - note and chord starts/ends round to the nearest `grid` tick; a note or
      chord that would vanish keeps one grid step;
    - notes longer than `vocab.max_duration` 16ths are truncated to it; chords
      that long are split into back-to-back copies of the same chord;
    - velocities snap to their bin centre;
    - within a part, notes of one pitch never overlap: of notes starting
      together the longest stays, an earlier note ends where the next starts;
    - chords are sorted, an earlier chord ends where the next starts, and
      no-chords are spelt Chord(root=None, quality="N");
    - time signatures move to the bar line where they take effect (what
      `Song.bars` does already), repeats and changes after the end are dropped.
    The tempo map, markers, key and title are kept as they are.
    """
    max_ticks = vocab.max_duration * TICKS_PER_16TH
    parts = [Part(p.name, _quantize_notes(p.notes, grid, max_ticks, vocab), p.program,
                  p.channel, p.is_drum) for p in song.parts]
    out = Song(parts=parts, chords=_quantize_chords(song.chords, grid, max_ticks),
               tempos=list(song.tempos), time_signatures=list(song.time_signatures),
               markers=list(song.markers), key=song.key, title=song.title)
    out.time_signatures = _signatures_on_bar_lines(out)
    return out


def _snap(tick: int, grid: int) -> int:
    return (tick + grid // 2) // grid * grid


def _quantize_notes(notes: list[Note], grid: int, max_ticks: int, vocab: TokenVocab) -> list[Note]:
    by_onset: dict[tuple[int, int], Note] = {}
    for note in notes:
        start = _snap(note.start, grid)
        end = min(max(_snap(note.end, grid), start + grid), start + max_ticks)
        velocity = vocab.velocity_value(vocab.velocity_bin(note.velocity))
        kept = by_onset.get((start, note.pitch))
        if kept is None or end > kept.end:
            by_onset[start, note.pitch] = Note(start, end, note.pitch, velocity)
    result = sorted(by_onset.values(), key=lambda n: (n.pitch, n.start))
    for i in range(len(result) - 1):
        here, after = result[i], result[i + 1]
        if here.pitch == after.pitch and here.end > after.start:
            result[i] = Note(here.start, after.start, here.pitch, here.velocity)
    return sorted(result)


def _quantize_chords(chords: list[Chord], grid: int, max_ticks: int) -> list[Chord]:
    snapped = []
    for chord in chords:
        start = _snap(chord.start, grid)
        end = max(_snap(chord.end, grid), start + grid)
        root, quality = (None, NO_CHORD) if chord.is_none else (chord.root % 12, chord.quality)
        snapped.append(Chord(start, end, root, quality))
    snapped.sort(key=lambda c: (c.start, c.end))
    result = []
    for i, chord in enumerate(snapped):
        end = chord.end
        if i + 1 < len(snapped):
            end = min(end, snapped[i + 1].start)
        for start in range(chord.start, end, max_ticks):
            result.append(Chord(start, min(end, start + max_ticks), chord.root, chord.quality))
    return result


def _signatures_on_bar_lines(song: Song) -> list[TimeSignature]:
    result: list[TimeSignature] = []
    for start in song.bars():
        ts = song.time_signature_at(start)
        if not result or (ts.numerator, ts.denominator) != (result[-1].numerator, result[-1].denominator):
            result.append(TimeSignature(start, ts.numerator, ts.denominator))
    return result


# -- encode --------------------------------------------------------------------

def stage_spec(stage: str) -> StageSpec:
    if stage not in STAGES:
        raise CuesmithError(f"unknown token stage {stage!r} (expected one of {', '.join(STAGES)})")
    return STAGES[stage]


def stage_notes(song: Song, stage: str) -> list[Note]:
    """The notes a stage encodes: every note of its parts, merged and sorted."""
    return _notes_of(song, stage_spec(stage))


def _notes_of(song: Song, spec: StageSpec) -> list[Note]:
    return sorted(n for name in spec.parts if (p := song.part(name)) is not None for n in p.notes)


def _row(**values: int) -> list[int]:
    row = [0] * N_FIELDS
    for name, value in values.items():
        row[FIELDS.index(name)] = value
    return row


def encode(song: Song, stage: str, vocab: TokenVocab = VOCAB) -> np.ndarray:
    """Tokens of one stage of a quantised song, shape (T, N_FIELDS), int64."""
    spec = stage_spec(stage)
    events = _events(song, spec, vocab)
    bars = song.bars()
    tempos = sorted(song.tempos)
    tempo_ticks = [t.tick for t in tempos]
    rows = [_row(type=TokenType.BOS)]
    i = 0
    for bar_start in bars:
        ts = song.time_signature_at(bar_start)
        bar_end = bar_start + ts.ticks_per_bar
        tempo = tempos[max(0, bisect.bisect_right(tempo_ticks, bar_start) - 1)].bpm
        rows.append(_row(type=TokenType.BAR, meter=1 + vocab.meter_index(ts),
                         tempo=1 + vocab.tempo_bin(tempo)))
        onset = -1
        while i < len(events) and events[i][0] < bar_end:
            tick, _, row = events[i]
            if tick != onset:
                onset = tick
                rows.append(_row(type=TokenType.POSITION, position=1 + (tick - bar_start) // TICKS_PER_16TH))
            rows.append(row)
            i += 1
    rows.append(_row(type=TokenType.EOS))
    return np.array(rows, dtype=np.int64)


def _events(song: Song, spec: StageSpec, vocab: TokenVocab) -> list[tuple[int, tuple, list[int]]]:
    events = []
    if spec.chords:
        for c in song.chords:
            if not c.is_none and c.quality not in CHORD_QUALITIES:
                raise CuesmithError(f"chord quality {c.quality!r} at tick {c.start} is not one of "
                                    f"{' '.join(QUALITIES)}")
            root = 0 if c.is_none else 1 + c.root % 12
            quality = QUALITIES.index(NO_CHORD if c.is_none else c.quality)
            row = _row(type=TokenType.CHORD, root=root, quality=1 + quality,
                       duration=_duration_16ths(c.start, c.end, vocab, "chord"))
            events.append((c.start, (0,), row))
    for note in _notes_of(song, spec):
        row = _row(type=TokenType.NOTE, pitch=1 + note.pitch,
                   duration=_duration_16ths(note.start, note.end, vocab, "note"),
                   velocity=1 + vocab.velocity_bin(note.velocity))
        events.append((note.start, (1, note.pitch, note.end, note.velocity), row))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


def _duration_16ths(start: int, end: int, vocab: TokenVocab, what: str) -> int:
    if start < 0:
        raise CuesmithError(f"{what} at ticks {start}..{end} starts before the song")
    if start % TICKS_PER_16TH or end % TICKS_PER_16TH:
        raise CuesmithError(f"{what} at ticks {start}..{end} is off the 16th grid (quantize the song first)")
    sixteenths = (end - start) // TICKS_PER_16TH
    if not 1 <= sixteenths <= vocab.max_duration:
        raise CuesmithError(f"{what} at ticks {start}..{end} lasts {sixteenths} 16ths, outside "
                            f"1..{vocab.max_duration} (quantize the song first)")
    return sixteenths


# -- decode --------------------------------------------------------------------

def decode(tokens: np.ndarray, stage: str, vocab: TokenVocab = VOCAB) -> Song:
    """The Song a token sequence describes; tolerant of model output.

    Stops at EOS; skips PAD/BOS and tokens whose fields are out of range or
    that make no sense where they stand (a note before any POSITION, a
    position beyond the bar). Notes go into one part named `parts[0]` of the
    stage, chords into `Song.chords`.
    """
    spec = stage_spec(stage)
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.shape[1] != N_FIELDS:
        raise CuesmithError(f"tokens must have shape (T, {N_FIELDS}), got {tokens.shape}")
    sizes = vocab.sizes
    notes: list[Note] = []
    chords: list[Chord] = []
    signatures: list[TimeSignature] = []
    tempos: list[TempoChange] = []
    bar_start, bar_len, tick = None, 0, None
    for row in tokens.tolist():
        kind = row[TYPE]
        if kind == TokenType.EOS:
            break
        if any(not 0 <= v < n for v, n in zip(row, sizes)):
            continue
        if kind == TokenType.BAR:
            if row[METER] == 0:
                continue
            bar_start = 0 if bar_start is None else bar_start + bar_len
            numerator, denominator = vocab.meters[row[METER] - 1]
            ts = TimeSignature(bar_start, numerator, denominator)
            bar_len, tick = ts.ticks_per_bar, None
            if not signatures or (numerator, denominator) != (signatures[-1].numerator, signatures[-1].denominator):
                signatures.append(ts)
            if row[TEMPO]:
                bpm = vocab.tempo_value(row[TEMPO] - 1)
                if not tempos or tempos[-1].bpm != bpm:
                    tempos.append(TempoChange(bar_start, bpm))
        elif kind == TokenType.POSITION:
            offset = (row[POSITION] - 1) * TICKS_PER_16TH
            tick = bar_start + offset if bar_start is not None and 0 <= offset < bar_len else None
        elif kind == TokenType.CHORD and tick is not None and spec.chords and row[QUALITY] and row[DURATION]:
            quality = QUALITIES[row[QUALITY] - 1]
            root = None if quality == NO_CHORD or row[ROOT] == 0 else row[ROOT] - 1
            chords.append(Chord(tick, tick + row[DURATION] * TICKS_PER_16TH, root,
                                NO_CHORD if root is None else quality))
        elif kind == TokenType.NOTE and tick is not None and spec.parts and row[PITCH] and row[DURATION]:
            velocity = vocab.velocity_value(row[VELOCITY] - 1) if row[VELOCITY] else 80
            notes.append(Note(tick, tick + row[DURATION] * TICKS_PER_16TH, row[PITCH] - 1, velocity))
    song = Song(parts=[Part(spec.parts[0], sorted(notes))] if spec.parts else [],
                chords=sorted(chords),
                tempos=tempos or [TempoChange(0, 120.0)],
                time_signatures=signatures or [TimeSignature(0)])
    if tempos and tempos[0].tick > 0:
        song.tempos.insert(0, TempoChange(0, tempos[0].bpm))
    return song


# -- helpers for the nets and the data set ---------------------------------------

def metrical_context(tokens: np.ndarray, vocab: TokenVocab = VOCAB) -> dict[str, np.ndarray]:
    """Per-token bar index, beat in bar, and tempo bin (+1, 0 before the first bar).

    Each token gets the bar it falls in (BOS: 0), the beat of its POSITION
    (a quarter in x/4, an eighth in x/8; BAR tokens: beat 0) and the tempo
    bin of its bar: the inputs of the Bar, Beat and Tempo embeddings.
    """
    tokens = np.asarray(tokens)
    kinds = tokens[:, TYPE]
    is_bar = kinds == TokenType.BAR
    bar = np.maximum(np.cumsum(is_bar) - 1, 0)
    index = np.arange(len(tokens))
    last_bar_row = np.maximum.accumulate(np.where(is_bar, index, -1))
    last_pos_row = np.maximum.accumulate(np.where(is_bar | (kinds == TokenType.POSITION), index, -1))
    tempo = np.where(last_bar_row >= 0, tokens[np.maximum(last_bar_row, 0), TEMPO], 0)
    meter = np.where(last_bar_row >= 0, tokens[np.maximum(last_bar_row, 0), METER], 0)
    sixteenths_per_beat = np.array([4] + [16 // d for _, d in vocab.meters])[np.clip(meter, 0, len(vocab.meters))]
    position = np.where(last_pos_row >= 0, tokens[np.maximum(last_pos_row, 0), POSITION], 0)
    beat = np.maximum(position - 1, 0) // sixteenths_per_beat
    return {"bar": bar, "beat": beat, "tempo": tempo}


def transpose_tokens(tokens: np.ndarray, semitones: int) -> Optional[np.ndarray]:
    """Tokens shifted by `semitones` (notes and chord roots); None if a pitch leaves 0..127."""
    out = np.array(tokens, copy=True)
    if semitones == 0:
        return out
    kinds = out[:, TYPE]
    notes = (kinds == TokenType.NOTE) & (out[:, PITCH] > 0)
    pitches = out[notes, PITCH] - 1 + semitones
    if pitches.size and (pitches.min() < 0 or pitches.max() > 127):
        return None
    out[notes, PITCH] = pitches + 1
    roots = (kinds == TokenType.CHORD) & (out[:, ROOT] > 0)
    out[roots, ROOT] = (out[roots, ROOT] - 1 + semitones) % 12 + 1
    return out
