"""POP909 songs as `Song`s on their own beat grid.

The data lives outside the repository (`data_root()`); songs 001-700 train,
701-800 validate, 801-909 are not here (kept out as an unseen set).

`load_song` aligns each song to its annotated beats: POP909 files hold one
tempo map whose beats are exactly one quarter apart, but the first beat sits
at an arbitrary tick and the time signatures in the files are placeholders
(mostly 1/4). So we shift the song so that bar lines fall on the annotated
downbeats (beat_midi.txt, third column), with whole 4/4 bars before the first
downbeat to hold the pick-up, and write one time signature (n/4, n = beats to
the next downbeat) wherever the bar length changes. Bars longer than 8 beats
are split into 4/4 bars. The annotation files keep their own clock (seconds
of the original MIDI file); `Pop909Song.tick_offset` is the original tick that
became tick 0.

Chords come from chord_midi.txt through `parse_harte` (Harte labels onto our
ten qualities or N; inversions dropped); neighbours that map to the same chord
are merged. The key is the longest section of key_audio.txt.

Melody/accompaniment convention (`melody_and_accompaniment`): the melody is
the MELODY track; the accompaniment is BRIDGE and PIANO merged into one part.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

from ..errors import CuesmithError
from .midi_io import read_midi
from .score import (CHORD_QUALITIES, NO_CHORD, TICKS_PER_BEAT, Chord, Key, Part, Song,
                    TempoChange, TimeSignature)
from .tokens import ACCOMPANIMENT_PART, MELODY_PART

LOADER_VERSION = "1"  # bump when load_song's output changes (data set caches use it)

TRAIN_SONGS = range(1, 701)
VALID_SONGS = range(701, 801)
TRACKS = {"MELODY": "melody", "BRIDGE": "bridge", "PIANO": "piano"}
MAX_BAR_BEATS = 8  # longer annotated bars are split into 4/4 bars
BEAT_TOLERANCE_TICKS = 30  # annotated beats should sit this close to the file's quarter grid
MAX_OFF_GRID_BEATS = 0.05  # ... all but this fraction of them

_NATURALS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}

# Harte shorthand -> our quality. Inversions (/bass) and added tones are dropped;
# sixths, ninths and minor-major sevenths fall back to their triad or seventh,
# a half-diminished seventh to its diminished triad.
_HARTE_QUALITIES = {
    "maj": "M", "min": "m", "dim": "o", "aug": "+", "sus2": "sus2", "sus4": "sus4",
    "maj7": "M7", "min7": "m7", "7": "7", "dim7": "o7", "hdim7": "o", "minmaj7": "m",
    "maj6": "M", "min6": "m", "9": "7", "maj9": "M7", "min9": "m7", "11": "7", "min11": "m7",
    "13": "7", "maj13": "M7", "min13": "m7", "aug7": "+", "1": "M", "5": "M",
}


@dataclass
class Pop909Song:
    number: int
    song: Song  # parts "melody", "bridge", "piano"; chords, key, bar grid from the annotations
    beats: list[tuple[float, bool]] = field(default_factory=list)  # (seconds, is downbeat)
    chord_labels: list[tuple[float, float, str]] = field(default_factory=list)  # chord_midi.txt
    key_labels: list[tuple[float, float, str]] = field(default_factory=list)  # key_audio.txt
    tick_offset: int = 0  # tick of the original file that is tick 0 of `song`


def data_root() -> Path:
    """The POP909 folder: $CUESMITH_POP909, else `shared/data/pop909` beside an ancestor of this file."""
    override = os.environ.get("CUESMITH_POP909")
    if override:
        root = Path(override).expanduser()
        if not root.is_dir():
            raise CuesmithError("CUESMITH_POP909 does not name a folder", root)
        return root
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data" / "pop909"
        if candidate.is_dir():
            return candidate
    raise CuesmithError("POP909 not found: no shared/data/pop909 above the project",
                        hint="set CUESMITH_POP909 to the folder holding 001/, 002/, ...")


def song_dir(number: int, root: Optional[Path] = None) -> Path:
    folder = (root or data_root()) / f"{number:03d}"
    if not folder.is_dir():
        raise CuesmithError(f"POP909 song {number} is not in the data folder", folder)
    return folder


# -- annotations ---------------------------------------------------------------

def parse_harte(label: str) -> tuple[Optional[int], str]:
    """(root pitch class or None, quality in CHORD_QUALITIES or "N") of a Harte label like 'Bb:min7/b7'."""
    text = label.strip()
    if text in ("N", "X", ""):
        return None, NO_CHORD
    root_text, _, shorthand = text.partition(":")
    root = _pitch_class(root_text, label)
    shorthand = shorthand.split("/")[0]
    base, _, extra = shorthand.partition("(")
    base = base or "maj"
    if base == "sus4" and "b7" in extra:
        return root, "sus4"
    if base not in _HARTE_QUALITIES:
        raise CuesmithError(f"unknown chord quality in Harte label {label!r}")
    quality = _HARTE_QUALITIES[base]
    assert quality in CHORD_QUALITIES
    return root, quality


def parse_key(label: str) -> Key:
    """Key of a POP909 key label like 'Gb:maj' or 'E:min'."""
    tonic_text, _, mode = label.strip().partition(":")
    if mode not in ("maj", "min"):
        raise CuesmithError(f"unknown key label {label!r}")
    return Key(_pitch_class(tonic_text, label), "major" if mode == "maj" else "minor")


def _pitch_class(text: str, label: str) -> int:
    if not text or text[0] not in _NATURALS or any(c not in "#b" for c in text[1:]):
        raise CuesmithError(f"unknown root in label {label!r}")
    return (_NATURALS[text[0]] + text.count("#") - text.count("b")) % 12


def _read_rows(path: Path, columns: int) -> list[list[str]]:
    """Whitespace-separated rows; a file may lack its final newline."""
    if not path.is_file():
        raise CuesmithError("annotation file missing", path)
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if any(len(row) < columns for row in rows):
        raise CuesmithError(f"expected {columns} columns per line", path)
    return rows


def read_beats(path: Path) -> list[tuple[float, bool]]:
    return [(float(r[0]), float(r[2]) == 1.0) for r in _read_rows(path, 3)]


def read_segments(path: Path) -> list[tuple[float, float, str]]:
    return [(float(r[0]), float(r[1]), r[2]) for r in _read_rows(path, 3)]


# -- loading -------------------------------------------------------------------

def load_song(number: int, root: Optional[Path] = None) -> Pop909Song:
    folder = song_dir(number, root)
    raw = read_midi(folder / f"{number:03d}.mid")
    beats = read_beats(folder / "beat_midi.txt")
    chord_labels = read_segments(folder / "chord_midi.txt")
    key_labels = read_segments(folder / "key_audio.txt")
    if not beats:
        raise CuesmithError("no beats annotated", folder / "beat_midi.txt")

    first_beat = _first_beat_tick(raw, beats, folder)
    bar_beats = _bar_lengths(beats)
    first_downbeat = first_beat + TICKS_PER_BEAT * next((i for i, (_, down) in enumerate(beats) if down), 0)
    starts = [n.start for p in raw.parts for n in p.notes]
    earliest = min(starts + [first_beat])
    pickup_bars = math.ceil(max(0, first_downbeat - earliest) / (4 * TICKS_PER_BEAT))
    origin = first_downbeat - pickup_bars * 4 * TICKS_PER_BEAT

    song = Song(parts=[_shifted_part(raw, track, name, origin) for track, name in TRACKS.items()],
                tempos=_shifted_tempos(raw.tempos, origin),
                time_signatures=_signatures(pickup_bars, bar_beats),
                title=f"POP909 {number:03d}")
    song.chords = _chords(raw, chord_labels, origin)
    if key_labels:
        song.key = parse_key(max(key_labels, key=lambda s: s[1] - s[0])[2])
    return Pop909Song(number, song, beats, chord_labels, key_labels, origin)


def _first_beat_tick(raw: Song, beats: list[tuple[float, bool]], folder: Path) -> int:
    """Tick of the first annotated beat on the file's quarter grid (the median over all beats,
    since a few files have a single misplaced beat)."""
    origins = sorted(raw.seconds_to_tick(seconds) - i * TICKS_PER_BEAT for i, (seconds, _) in enumerate(beats))
    first = round(origins[len(origins) // 2])
    off_grid = sum(abs(o - first) > BEAT_TOLERANCE_TICKS for o in origins)
    if off_grid > MAX_OFF_GRID_BEATS * len(origins):
        raise CuesmithError(f"{off_grid} of {len(origins)} annotated beats are off the MIDI quarter grid",
                            folder / "beat_midi.txt")
    return first


def _bar_lengths(beats: list[tuple[float, bool]]) -> list[int]:
    """Beats per bar from the first downbeat on (the last length repeats after the end)."""
    downbeats = [i for i, (_, down) in enumerate(beats) if down] or list(range(0, len(beats), 4))
    lengths = [b - a for a, b in zip(downbeats, downbeats[1:])] or [4]
    result = []
    for n in lengths:
        while n > MAX_BAR_BEATS:
            result.append(4)
            n -= 4
        result.append(n)
    return result


def _signatures(pickup_bars: int, bar_beats: list[int]) -> list[TimeSignature]:
    lengths = [4] * pickup_bars + bar_beats
    signatures, tick = [], 0
    for n in lengths:
        if not signatures or signatures[-1].numerator != n:
            signatures.append(TimeSignature(tick, n, 4))
        tick += n * TICKS_PER_BEAT
    return signatures


def _shifted_part(raw: Song, track: str, name: str, origin: int) -> Part:
    part = raw.part(track)
    if part is None:
        return Part(name)
    notes = [replace(n, start=n.start - origin, end=n.end - origin) for n in part.notes]
    return Part(name, notes, part.program, part.channel, part.is_drum)


def _shifted_tempos(tempos: list[TempoChange], origin: int) -> list[TempoChange]:
    at_origin = [t for t in tempos if t.tick <= origin]
    bpm = at_origin[-1].bpm if at_origin else tempos[0].bpm
    return [TempoChange(0, bpm)] + [TempoChange(t.tick - origin, t.bpm) for t in tempos if t.tick > origin]


def _chords(raw: Song, labels: list[tuple[float, float, str]], origin: int) -> list[Chord]:
    """Annotated chords on the song's ticks; neighbours that map to the same chord are merged."""
    chords: list[Chord] = []
    for start_s, end_s, label in labels:
        start = max(0, round(raw.seconds_to_tick(start_s)) - origin)
        end = round(raw.seconds_to_tick(end_s)) - origin
        if end <= start:
            continue
        root, quality = parse_harte(label)
        previous = chords[-1] if chords else None
        if previous and (previous.root, previous.quality) == (root, quality) and previous.end == start:
            chords[-1] = replace(previous, end=end)
        else:
            chords.append(Chord(start, end, root, quality))
    return chords


def melody_and_accompaniment(song: Song) -> Song:
    """The song with two parts: "melody" (MELODY) and "accompaniment" (BRIDGE and PIANO merged)."""
    melody = song.part("melody") or Part(MELODY_PART)
    others = [p for p in (song.part("bridge"), song.part("piano")) if p is not None]
    accompaniment = Part(ACCOMPANIMENT_PART, sorted(n for p in others for n in p.notes),
                         program=others[-1].program if others else 0, channel=1)
    return replace(song, parts=[Part(MELODY_PART, list(melody.notes), melody.program, 0), accompaniment])
