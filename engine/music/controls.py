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

DENSITY_BINS = 8  # note onsets per bar, binned (see DENSITY_EDGES)
DENSITY_EDGES = (1, 3, 5, 8, 12, 16, 24)  # onsets per 4/4 bar at the bin boundaries
STRENGTH_BINS = 8  # mean onset strength (velocity 0..127) per bar, binned
REGISTER_BINS = 8  # mean pitch per bar, binned over MIDI 36..96
MODES = ("major", "minor")
CONTROL_FIELDS = ("density", "strength", "mode", "register", "section_start")
CONTROL_SIZES = (DENSITY_BINS, STRENGTH_BINS, len(MODES), REGISTER_BINS, 2)


@dataclass(frozen=True)
class BarControls:
    """What one bar of music should be like; every field is a plain number a person can read."""

    density: float  # note onsets per bar (accompaniment + melody), scaled to a 4/4 bar
    strength: float  # mean velocity of the onsets, 0..127
    mode: str  # "major" | "minor"
    register: float  # mean MIDI pitch of the notes
    section_start: bool  # a new section begins at this bar (a cut, in the plan)

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
        ))
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), len(CONTROL_FIELDS))
