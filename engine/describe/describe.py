"""From a `MusicAnalysis` to a `Description`: overview, one window per 2 s, and cut points on beats.

Cuts (`plan_cuts`): every section start after the first is a cut (on its bar
line); inside a section the shot changes every N beats counted from the
section's first beat, N from the section's energy (`CUT_EVERY_BEATS`): calm
sections hold a shot for four bars, the loudest cut every half bar. Every cut
is a beat time of the analysis.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np

from ..critique.moments import clock
from .analysis import MusicAnalysis
from .lyrics import Lyrics
from .tags import guess_genre, guess_mv_type, read_tags, visual_style

SCHEMA = "cuesmith.description"
SCHEMA_VERSION = 1
WINDOW_S = 2.0
CUT_EVERY_BEATS = ((0.3, 16), (0.55, 8), (0.8, 4), (1.01, 2))  # (energy below, beats per shot)
SUBJECTS = {"Live Performance": "the band on stage", "Lyric Video": "the lyric text",
            "Animation": "the animated characters", "Story Narrative": "the protagonist",
            "Artistic/Abstract": "abstract shapes and light", "Dance Performance": "the dancers",
            "Behind-the-Scenes": "the artist at work",
            "Nature/Scenic": "the landscape", "Static/Dynamic Picture Montage": "the photographs",
            "Cinematic Drama": "the lead actors"}


@dataclass
class Cut:
    time: float  # a beat of the analysis, seconds
    beat: int  # its index in analysis.beats
    downbeat: bool
    section: str
    reason: str  # "section start" | "every N beats"


@dataclass
class Shot:
    number: int  # 1-based, as in cuts.otio
    start: float
    end: float
    section: str  # where it starts
    framing: str


@dataclass
class Window:
    index: int
    start: float
    end: float
    section: str
    section_starts: list[str]  # sections that begin inside this window
    energy: float  # 0..1
    trend: str  # "building" | "falling" | "steady"
    onsets_per_second: float
    chords: list[str]
    beats: int
    downbeats: list[float]
    music: str  # what happens musically
    shot: str  # the shot running at the window's start, and those cut to inside it
    camera: str
    camera_energy: float  # 0..1
    cuts: list[float]
    lyrics: list[str]
    text: str = ""


@dataclass
class Overview:
    genre: str
    genre_confidence: float
    genre_source: str  # "tags" | "guess"
    mv_type: str
    mv_type_source: str
    mv_type_reason: str
    mood: str
    valence: float
    arousal: float
    mood_arc: list[str]
    visual_style: str
    themes: list[str]
    tags: list[str]  # the user's tags that name neither a genre nor an MV type
    text: str = ""


@dataclass
class Description:
    analysis: MusicAnalysis
    overview: Overview
    windows: list[Window]
    cuts: list[Cut]
    lyrics: Optional[Lyrics]
    shots: list[Shot] = field(default_factory=list)  # one per clip of cuts.otio
    section_ideas: dict[str, str] = field(default_factory=dict)  # section name -> visual idea
    prose_source: str = "template"
    prose_note: str = ""

    def to_dict(self) -> dict:
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "analysis": self.analysis.to_dict(),
                "overview": asdict(self.overview), "section_ideas": dict(self.section_ideas),
                "windows": [asdict(w) for w in self.windows], "cuts": [asdict(c) for c in self.cuts],
                "shots": [asdict(s) for s in self.shots],
                "lyrics": asdict(self.lyrics) if self.lyrics else None, "window_seconds": WINDOW_S,
                "prose_source": self.prose_source, "prose_note": self.prose_note}

    def summary(self) -> str:
        a, o = self.analysis, self.overview
        tempo = f"{a.tempo:.0f} BPM" if a.tempo else "no steady beat"
        lines = [f"{a.source}: {clock(a.duration)}, {tempo}, {a.key or 'key unclear'}",
                 f"genre: {o.genre} ({o.genre_source}, confidence {o.genre_confidence:.2f}); MV type: {o.mv_type}",
                 f"mood: {o.mood}; arc: {' → '.join(o.mood_arc)}",
                 f"sections: {', '.join(f'{s.name} {clock(s.start)}' for s in a.sections)}",
                 f"windows: {len(self.windows)} × {WINDOW_S:g} s; suggested cuts: {len(self.cuts)}",
                 f"prose: {self.prose_source}" + (f" ({self.prose_note})" if self.prose_note else "")]
        return "\n".join(lines)

    def save(self, out_dir, fps: float = 30.0):
        """description.json, description.md, cuts.otio (and cuts.edl) in `out_dir`; never replaces a file."""
        from .report import write_description

        return write_description(self, out_dir, fps=fps)


def describe_analysis(analysis: MusicAnalysis, lyrics: Optional[Lyrics] = None, tags=None) -> Description:
    """The structured description with template prose (prose.apply_llm may reword it)."""
    from .prose import template_texts

    reading = read_tags(tags)
    themes = lyrics.themes if lyrics else []
    if reading.genre:
        genre, confidence, genre_source = reading.genre, 1.0, "tags"
    else:
        genre, confidence = guess_genre(analysis.tempo, analysis.arousal, analysis.percussive)
        genre_source = "guess"
    if reading.mv_type:
        mv_type, mv_source, mv_reason = reading.mv_type, "tags", "named in the tags"
    else:
        mv_type, mv_reason = guess_mv_type(analysis.arousal, analysis.percussive, bool(lyrics and lyrics.lines), themes)
        mv_source = "guess"
    overview = Overview(genre, confidence, genre_source, mv_type, mv_source, mv_reason, analysis.mood,
                        analysis.valence, analysis.arousal, [f"{s.name}: {s.mood}" for s in analysis.sections],
                        visual_style(analysis.valence, analysis.arousal, analysis.mode, genre), themes, reading.other)
    cuts = plan_cuts(analysis)
    shots = plan_shots(analysis, cuts, mv_type)
    windows = build_windows(analysis, cuts, shots, lyrics)
    description = Description(analysis, overview, windows, cuts, lyrics, shots)
    template_texts(description)
    return description


def beats_per_shot(energy: float) -> int:
    return next(n for limit, n in CUT_EVERY_BEATS if energy < limit)


def plan_cuts(analysis: MusicAnalysis) -> list[Cut]:
    beats = np.array(analysis.beats)
    downbeats = set(np.round(analysis.downbeats, 4).tolist())
    cuts: list[Cut] = []
    for n, section in enumerate(analysis.sections):
        inside = np.flatnonzero((beats >= section.start - 1e-6) & (beats < section.end - 1e-6))
        if len(inside) == 0:
            continue
        step = beats_per_shot(section.energy)
        bar_lines = [i for i in inside if round(float(beats[i]), 4) in downbeats]
        anchor = bar_lines[0] if bar_lines else inside[0]  # shots change on the bar grid where there is one
        # the section's start, then every `step` beats from its first bar line, no shot shorter than 2 beats
        grid = [inside[0]] + [i for i in inside if i >= inside[0] + 2 and (i - anchor) % step == 0]
        for k, beat in enumerate(grid):
            if n == 0 and k == 0:
                continue  # the first shot starts with the music, not on a cut
            time = float(beats[beat])
            cuts.append(Cut(round(time, 4), int(beat), round(time, 4) in downbeats, section.name,
                            "section start" if k == 0 else f"every {step} beats"))
    return cuts


def window_bounds(duration: float) -> list[tuple[float, float]]:
    count = max(1, math.ceil(duration / WINDOW_S - 1e-9))
    return [(round(i * WINDOW_S, 4), round(min((i + 1) * WINDOW_S, duration), 4)) for i in range(count)]


def energy_word(energy: float) -> str:
    return "quiet" if energy < 0.3 else "moderate" if energy < 0.55 else "loud" if energy < 0.8 else "peak"


def density_word(rate: float) -> str:
    return "sparse" if rate < 2 else "flowing" if rate < 5 else "busy"


def plan_shots(analysis: MusicAnalysis, cuts: list[Cut], mv_type: str) -> list[Shot]:
    """One shot from each cut to the next; its framing from the energy of its first 2 s, a new scene where a
    section starts, and the framings of a band taken in turn so consecutive shots differ."""
    edges = [0.0] + [c.time for c in cuts] + [analysis.duration]
    shots = []
    for i, (start, end) in enumerate(zip(edges[:-1], edges[1:])):
        section = analysis.section_at(start)
        energy = analysis.energy_between(start, min(start + WINDOW_S, end))
        new_scene = i == 0 or cuts[i - 1].reason == "section start"
        shots.append(Shot(i + 1, round(start, 4), round(end, 4), section.name,
                          shot_for(energy, new_scene, mv_type, section.name, i)))
    return shots


def build_windows(analysis: MusicAnalysis, cuts: list[Cut], shots: list[Shot],
                  lyrics: Optional[Lyrics]) -> list[Window]:
    beats, downbeats, onsets = (np.array(x) for x in (analysis.beats, analysis.downbeats, analysis.onsets))
    cut_times = np.array([c.time for c in cuts])
    shot_starts = np.array([s.start for s in shots])
    windows, previous = [], None
    for i, (start, end) in enumerate(window_bounds(analysis.duration)):
        section = analysis.section_at(start)
        energy = analysis.energy_between(start, end)
        trend = ("steady" if previous is None or abs(energy - previous) < 0.1
                 else "building" if energy > previous else "falling")
        previous = energy
        inside = lambda xs: xs[(xs >= start) & (xs < end)]  # noqa: E731
        rate = len(inside(onsets)) / max(end - start, 1e-6)
        chords = list(dict.fromkeys(label for a, b, label in analysis.chords if a < end and b > start))
        starting = [s.name for s in analysis.sections if start < s.start < end or (s.start == start and i > 0)]
        camera_energy = round(0.6 * energy + 0.4 * section.arousal, 3)
        running = shots[int(np.searchsorted(shot_starts, start, side="right")) - 1]
        following = [s for s in shots if start < s.start < end]
        shot = f"shot {running.number}: {running.framing}" + "".join(
            f"; cut to shot {s.number}: {s.framing}" for s in following)
        window = Window(i, start, end, section.name, starting, round(energy, 3), trend, round(rate, 2), chords,
                        len(inside(beats)), [round(float(d), 4) for d in inside(downbeats)], "", shot,
                        camera_for(camera_energy), camera_energy, [round(float(c), 4) for c in inside(cut_times)],
                        [line.text for line in lyrics.between(start, end)] if lyrics else [])
        windows.append(window)
    return windows


FRAMINGS = (  # per energy band, taken in turn
    ("slow close-up on details around {s}", "wide, still frame of {s}", "soft-focus detail of {s}"),
    ("medium shot of {s}", "over-the-shoulder view of {s}", "slow pan across {s}"),
    ("medium close-up of {s} in motion", "low-angle shot of {s}", "tracking shot alongside {s}"),
    ("tight close-ups and quick inserts of {s}", "dynamic wide of {s} at full tilt", "fast push-in on {s}"),
)


def shot_for(energy: float, new_scene: bool, mv_type: str, section: str, number: int = 0) -> str:
    subject = SUBJECTS.get(mv_type, "the subject")
    if new_scene:
        return (f"new scene, {section}: wide establishing shot of {subject}" if energy < 0.55
                else f"new scene, {section}: bold medium shot of {subject}")
    band = 0 if energy < 0.3 else 1 if energy < 0.55 else 2 if energy < 0.8 else 3
    return FRAMINGS[band][number % 3].format(s=subject)


def camera_for(camera_energy: float) -> str:
    return ("static, locked off" if camera_energy < 0.25 else "slow push-in" if camera_energy < 0.45
            else "gentle handheld drift" if camera_energy < 0.65 else "tracking move"
            if camera_energy < 0.8 else "energetic handheld, whip pans")
