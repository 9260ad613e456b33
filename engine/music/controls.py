"""Per-bar control attributes: the explicit bridge between video and music.

The nets are conditioned on these, bar by bar (ARCHITECTURE.md, "the explicit
bridge"). During training they are measured from the music itself
(`measure_controls`, in this module); at inference the plan estimates the same
attributes from the video (engine/planning). Both sides produce `BarControls`,
and `control_ids` turns them into the integer bins the nets embed.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .key import detect_key
from .score import TICKS_PER_16TH

DENSITY_BINS = 8  # note onsets per bar, binned (see DENSITY_EDGES)
DENSITY_EDGES = (1, 3, 5, 8, 12, 16, 24)  # onsets per 4/4 bar at the bin boundaries
STRENGTH_BINS = 8  # mean onset strength (velocity 0..127) per bar, binned
REGISTER_BINS = 8  # mean pitch per bar, binned over MIDI 36..96
MODES = ("major", "minor")
# the bar's place in the song's form (POP909's phrase labels, engine/music/structure.py): a phrase
# without melody (intro, interlude, outro), the first melodic material (A, a verse) or a later one (B..., a chorus)
ROLES = ("instrumental", "verse", "chorus")
CONTROL_FIELDS = ("density", "strength", "mode", "register", "section_start", "role")
CONTROL_SIZES = (DENSITY_BINS, STRENGTH_BINS, len(MODES), REGISTER_BINS, 2, len(ROLES))


@dataclass(frozen=True)
class BarControls:
    """What one bar of music should be like; every field is a plain number a person can read."""

    density: float  # note onsets per bar (accompaniment + melody), scaled to a 4/4 bar
    strength: float  # mean velocity of the onsets, 0..127
    mode: str  # "major" | "minor"
    register: float  # mean MIDI pitch of the notes
    section_start: bool  # a new section (phrase) begins at this bar (a cut, in the plan)
    role: str = "verse"  # one of ROLES

    def to_dict(self) -> dict:
        return asdict(self)


def control_ids(controls: list[BarControls]) -> np.ndarray:
    """(n_bars, len(CONTROL_FIELDS)) int64 bins, in CONTROL_FIELDS order."""
    rows = []
    for c in controls:
        rows.append((
            int(np.searchsorted(DENSITY_EDGES, c.density, side="right")),
            int(np.clip(c.strength / 128.0 * STRENGTH_BINS, 0, STRENGTH_BINS - 1)),
            MODES.index(c.mode),
            int(np.clip((c.register - 36.0) / 60.0 * REGISTER_BINS, 0, REGISTER_BINS - 1)),
            int(bool(c.section_start)),
            ROLES.index(c.role),
        ))
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), len(CONTROL_FIELDS))


# -- measured from the music (training) ------------------------------------------

SECTION_MIN_BARS = 4  # a measured section lasts at least this many bars
SECTION_DENSITY_RATIO = 2.0  # a jump in density this large between 2-bar spans starts a section
DEFAULT_REGISTER = 64.0  # register of a bar without notes when no bar before it has any


def measure_controls(song) -> list[BarControls]:
    """The controls of every bar of `song` (a `Song`), measured from its notes.

    density: notes starting in the bar (all parts), scaled to a 4/4 bar;
    strength: their mean velocity (0 without notes); register: their mean
    pitch (else the previous bar's); mode: the song's detected key (one mode
    per song: a bar alone is too short to tell); section_start: bar 0, the
    return of the melody after a silent bar, or a 2x change in density
    (`section_starts`); role: verse where the melody sounds, else
    instrumental (training replaces it with the human phrase labels).
    """
    bars = song.bars()
    if not bars:
        return []
    mode = detect_key(song).mode
    notes = sorted(n for p in song.parts if not p.is_drum for n in p.notes)
    onsets = np.array([n.start for n in notes], dtype=np.int64)
    ends = [start + song.time_signature_at(start).ticks_per_bar for start in bars]
    density, strength, register = [], [], []
    last_register = DEFAULT_REGISTER
    for start, end in zip(bars, ends):
        lo, hi = np.searchsorted(onsets, start), np.searchsorted(onsets, end)
        in_bar = notes[lo:hi]
        bar_16ths = max(1, (end - start) // TICKS_PER_16TH)
        density.append(len(in_bar) * 16.0 / bar_16ths)
        strength.append(float(np.mean([n.velocity for n in in_bar])) if in_bar else 0.0)
        if in_bar:
            last_register = float(np.mean([n.pitch for n in in_bar]))
        register.append(last_register)
    melody_sounds = bar_melody_sounds(song, bars, ends)
    starts = section_starts(density, melody_sounds)
    return [BarControls(d, s, mode, r, b, "verse" if m else "instrumental")
            for d, s, r, b, m in zip(density, strength, register, starts, melody_sounds)]


def bar_melody_sounds(song, bars: list[int], ends: list[int]) -> list[bool]:
    melody = song.part("melody")
    notes = melody.notes if melody is not None else []
    return [any(n.start < end and n.end > start for n in notes) for start, end in zip(bars, ends)]


def section_starts(density: list[float], melody_sounds: list[bool]) -> list[bool]:
    """Bar 0, a bar where the melody returns after a silent bar, or where the mean
    density of the next two bars differs 2x from the previous two; at least
    SECTION_MIN_BARS apart."""
    starts, last = [], -SECTION_MIN_BARS
    for i in range(len(density)):
        before = np.mean(density[max(0, i - 2):i]) if i else 0.0
        after = np.mean(density[i:i + 2])
        jump = i > 0 and max(before, after) >= SECTION_DENSITY_RATIO * max(min(before, after), 1.0)
        returns = i > 0 and melody_sounds[i] and not melody_sounds[i - 1]
        is_start = i == 0 or ((jump or returns) and i - last >= SECTION_MIN_BARS)
        starts.append(is_start)
        if is_start:
            last = i
    return starts
