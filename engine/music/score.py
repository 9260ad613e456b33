"""The music representation every stage shares.

Times are integer MIDI ticks at `TICKS_PER_BEAT` per quarter note, so
quantised music round-trips exactly; seconds come from the tempo map.
A "beat" follows the time signature's denominator (a quarter in 4/4 and 3/4).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Iterator, Optional

TICKS_PER_BEAT = 480  # PPQ of the files we write (REFERENCE.md: what DAWs expect)
TICKS_PER_16TH = TICKS_PER_BEAT // 4

PITCH_CLASSES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
CHORD_QUALITIES = ("M", "m", "M7", "m7", "7", "o", "o7", "sus2", "sus4", "+")
NO_CHORD = "N"


@dataclass(frozen=True, order=True)
class Note:
    start: int  # ticks
    end: int  # ticks, > start
    pitch: int  # MIDI 0..127
    velocity: int = 80

    @property
    def duration(self) -> int:
        return self.end - self.start


@dataclass
class Part:
    """One instrument line, written as one named MIDI track."""

    name: str
    notes: list[Note] = field(default_factory=list)
    program: int = 0  # General MIDI program, 0-based
    channel: int = 0  # 9 is drums
    is_drum: bool = False


@dataclass(frozen=True, order=True)
class Chord:
    start: int
    end: int
    root: Optional[int]  # pitch class 0..11, None for no-chord
    quality: str = NO_CHORD  # one of CHORD_QUALITIES or NO_CHORD

    @property
    def is_none(self) -> bool:
        return self.root is None or self.quality == NO_CHORD


@dataclass(frozen=True, order=True)
class TempoChange:
    tick: int
    bpm: float


@dataclass(frozen=True, order=True)
class TimeSignature:
    tick: int
    numerator: int = 4
    denominator: int = 4

    @property
    def ticks_per_beat(self) -> int:
        return TICKS_PER_BEAT * 4 // self.denominator

    @property
    def ticks_per_bar(self) -> int:
        return self.ticks_per_beat * self.numerator


@dataclass(frozen=True, order=True)
class Marker:
    tick: int
    text: str


@dataclass(frozen=True)
class Key:
    tonic: int  # pitch class 0..11
    mode: str  # "major" | "minor"

    @property
    def name(self) -> str:
        return f"{PITCH_CLASSES[self.tonic]} {self.mode}"


@dataclass
class Song:
    """Parts, chords and the conductor data (tempo map, metre, key, markers)."""

    parts: list[Part] = field(default_factory=list)
    chords: list[Chord] = field(default_factory=list)
    tempos: list[TempoChange] = field(default_factory=lambda: [TempoChange(0, 120.0)])
    time_signatures: list[TimeSignature] = field(default_factory=lambda: [TimeSignature(0)])
    markers: list[Marker] = field(default_factory=list)
    key: Optional[Key] = None
    title: str = ""

    def part(self, name: str) -> Optional[Part]:
        return next((p for p in self.parts if p.name == name), None)

    @property
    def end_tick(self) -> int:
        ends = [n.end for p in self.parts for n in p.notes] + [c.end for c in self.chords]
        return max(ends, default=0)

    # -- tempo map ---------------------------------------------------------
    def tick_to_seconds(self, tick: float) -> float:
        seconds, last_tick, bpm = 0.0, 0, self.tempos[0].bpm
        for change in self.tempos[1:]:
            if change.tick >= tick:
                break
            seconds += (change.tick - last_tick) * 60.0 / (bpm * TICKS_PER_BEAT)
            last_tick, bpm = change.tick, change.bpm
        return seconds + (tick - last_tick) * 60.0 / (bpm * TICKS_PER_BEAT)

    def seconds_to_tick(self, seconds: float) -> float:
        elapsed, last_tick, bpm = 0.0, 0, self.tempos[0].bpm
        for change in self.tempos[1:]:
            span = (change.tick - last_tick) * 60.0 / (bpm * TICKS_PER_BEAT)
            if elapsed + span >= seconds:
                break
            elapsed += span
            last_tick, bpm = change.tick, change.bpm
        return last_tick + (seconds - elapsed) * bpm * TICKS_PER_BEAT / 60.0

    @property
    def duration_seconds(self) -> float:
        return self.tick_to_seconds(self.end_tick)

    # -- bar grid ----------------------------------------------------------
    def time_signature_at(self, tick: int) -> TimeSignature:
        ticks = [ts.tick for ts in self.time_signatures]
        return self.time_signatures[max(0, bisect.bisect_right(ticks, tick) - 1)]

    def bars(self, end_tick: Optional[int] = None) -> list[int]:
        """Start ticks of every bar up to `end_tick` (default: the end of the music)."""
        end = self.end_tick if end_tick is None else end_tick
        return [tick for tick, _ in self._grid(end, per_beat=False)]

    def beats(self, end_tick: Optional[int] = None) -> list[tuple[int, bool]]:
        """(tick, is_downbeat) for every beat up to `end_tick`."""
        end = self.end_tick if end_tick is None else end_tick
        return list(self._grid(end, per_beat=True))

    def _grid(self, end: int, per_beat: bool) -> Iterator[tuple[int, bool]]:
        signatures = sorted(self.time_signatures)
        tick = 0
        for i, ts in enumerate(signatures):
            stop = signatures[i + 1].tick if i + 1 < len(signatures) else max(end, 1)
            tick = max(tick, ts.tick)
            while tick < stop and tick < max(end, 1):
                if per_beat:
                    for b in range(ts.numerator):
                        if tick + b * ts.ticks_per_beat < end or (b == 0):
                            yield tick + b * ts.ticks_per_beat, b == 0
                else:
                    yield tick, True
                tick += ts.ticks_per_bar

    def bar_position(self, tick: int) -> tuple[int, int]:
        """(bar index, position in 16ths from the bar start) of `tick`."""
        bars = self.bars(max(tick + 1, self.end_tick))
        index = max(0, bisect.bisect_right(bars, tick) - 1)
        return index, (tick - bars[index]) // TICKS_PER_16TH
