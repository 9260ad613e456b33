"""`ScorePlan`: what the music must do, bar by bar, before any note is generated.

Pipelines (vmusprod, vidmuse, mtm) read only a ScorePlan, never the video
analysis, so planning can improve without touching them. `first_plan` is the
simple baseline: one tempo from motion, 4/4, a section at each cut. The
cut-locked planner (cut on beats, bounded tempo changes, the last bar ending
with the picture) replaces it. `duration` is the picture's length; a
cut-locked plan's bars end there (see cutlock.py for when they cannot).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from ..music.controls import BarControls
from ..music.score import TICKS_PER_BEAT, Key, Marker, Song, TempoChange, TimeSignature


@dataclass
class PlanOptions:
    """What a user may pin; None means: derive it from the video."""

    tempo: Optional[float] = None  # BPM
    mode: Optional[str] = None  # "major" | "minor"
    key: Optional[Key] = None
    density: Optional[str] = None  # "low" | "mid" | "high"
    time_signature: tuple[int, int] = (4, 4)
    # False: the cut-locked planner may shorten the bar before a cut so the cut starts a bar;
    # True: every bar keeps `time_signature` (a cut may then land on a beat inside a bar)
    pin_time_signature: bool = False


@dataclass
class ScorePlan:
    duration: float  # seconds of picture to cover
    tempos: list[TempoChange]
    time_signatures: list[TimeSignature]
    bar_ticks: list[int]  # start tick of every bar; len == len(controls)
    controls: list[BarControls]
    key: Key
    markers: list[Marker] = field(default_factory=list)  # cut times, written to the MIDI conductor track
    cut_times: list[float] = field(default_factory=list)  # seconds, relative to the clip
    cut_ticks: list[int] = field(default_factory=list)  # tick of each locked cut (a beat); cut-locked plans only
    tempo_range: tuple[float, float] = (0.0, 0.0)  # BPM the planner kept to; (0, 0) when not bounded
    planner: str = "constant"  # "constant" (first_plan) | "cut-locked" (plan)
    warnings: list[str] = field(default_factory=list)  # cuts it could not lock, and why
    # stage -> per bar, the earlier bar whose onset rhythm it repeats or -1 (form.rhythm_sources)
    rhythm_from: dict[str, list[int]] = field(default_factory=dict)

    @property
    def n_bars(self) -> int:
        return len(self.bar_ticks)

    def empty_song(self) -> Song:
        """A Song with the plan's conductor data and no parts: pipelines fill in the parts."""
        return Song(tempos=list(self.tempos), time_signatures=list(self.time_signatures),
                    markers=list(self.markers), key=self.key)

    def to_dict(self) -> dict:
        return asdict(self)

    def beat_ticks(self) -> list[tuple[int, bool]]:
        """(tick, is_downbeat) of every beat that starts before the end of the picture.

        The bar line at the end of the picture (where a cut-locked plan's last bar ends) is not one.
        """
        song = self.empty_song()
        end = int(round(song.seconds_to_tick(self.duration)))
        return song.beats(end)

    def beat_seconds(self) -> list[tuple[float, bool]]:
        song = self.empty_song()
        return [(song.tick_to_seconds(t), down) for t, down in self.beat_ticks()]


def first_plan(analysis, options: Optional[PlanOptions] = None) -> ScorePlan:
    """Baseline plan: the tempo suggested by motion, 4/4, a section starting at the bar of each cut."""
    options = options or PlanOptions()
    bpm = options.tempo or analysis.tempo.bpm
    numerator, denominator = options.time_signature
    signature = TimeSignature(0, numerator, denominator)
    seconds_per_bar = signature.ticks_per_bar / TICKS_PER_BEAT * 60.0 / bpm
    n_bars = max(1, int(-(-analysis.duration // seconds_per_bar)))
    cut_bars = {int(c.time // seconds_per_bar) for c in analysis.cuts}
    mode = options.mode or ("major" if analysis.colour.mean_brightness >= 0.35 else "minor")
    density = {"low": 3.0, "mid": 8.0, "high": 16.0}.get(options.density or "", 4 + 60 * analysis.motion.mean)
    controls = [BarControls(density, 80.0, mode, 64.0, bar == 0 or bar in cut_bars) for bar in range(n_bars)]
    song = Song(tempos=[TempoChange(0, bpm)])
    markers = [Marker(int(round(song.seconds_to_tick(c.time))), f"cut {i + 1}") for i, c in enumerate(analysis.cuts)]
    key = options.key or Key(0 if mode == "major" else 9, mode)
    return ScorePlan(analysis.duration, [TempoChange(0, bpm)], [signature],
                     [i * signature.ticks_per_bar for i in range(n_bars)], controls, key, markers,
                     [c.time for c in analysis.cuts])
