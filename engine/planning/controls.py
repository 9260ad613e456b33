"""Per-bar control attributes from the picture (ARCHITECTURE.md, "the explicit bridge").

The mapping, bar by bar (times are the bar's span in seconds of the clip):

- motion → density and strength: m = mean smoothed motion in the bar over
  `video.tempo.MOTION_FULL_SCALE`, clipped to 0..1 (the scale V-MusProd's
  tempo map uses); density = 2 + 14·m onsets per 4/4 bar, strength (mean
  velocity) = 56 + 48·m. A pinned density (low/mid/high) wins over motion.
- fades → dynamics: a bar that overlaps a fade (through black, in or out)
  plays at `FADE_STRENGTH` of its strength, one overlapping a dissolve at
  `DISSOLVE_STRENGTH`: the music breathes with the picture.
- colour → mode, valence and register: valence = 0.5·brightness +
  0.3·saturation + 0.2·(warmth + 1)/2 over the bar's section (the shot it
  lies in); major when valence ≥ `MAJOR_VALENCE`, else minor; register
  (mean MIDI pitch) = 52 + 20·brightness of the bar. A pinned mode wins.
- cuts → sections: section_start is set on the bar a cut starts (or lies in).
"""
from __future__ import annotations

import numpy as np

from ..music.controls import BarControls
from ..music.mood import VALENCE_SPLIT, picture_valence as valence
from ..music.score import Key
from ..video.tempo import MOTION_FULL_SCALE

MAJOR_VALENCE = VALENCE_SPLIT  # one split for planner and critique (music/mood.py)
FADE_STRENGTH = 0.6
DISSOLVE_STRENGTH = 0.85
PINNED_DENSITY = {"low": 3.0, "mid": 8.0, "high": 16.0}


def clip_valence(analysis) -> float:
    c = analysis.colour
    return valence(c.mean_brightness, c.mean_saturation, c.mean_warmth)


def plan_key(analysis, options) -> Key:
    if options.key is not None:
        return options.key
    mode = options.mode or ("major" if clip_valence(analysis) >= MAJOR_VALENCE else "minor")
    return Key(0 if mode == "major" else 9, mode)  # no evidence for a tonic: C major / A minor


def window_mean(times: np.ndarray, values: np.ndarray, start: float, end: float, default: float) -> float:
    inside = (times >= start) & (times < end)
    if inside.any():
        return float(values[inside].mean())
    if len(times):  # a bar shorter than the sampling step: the nearest sample
        return float(values[int(np.argmin(np.abs(times - (start + end) / 2)))])
    return default


def section_spans(bar_times: list[float], section_flags: list[bool]) -> list[tuple[float, float]]:
    """(start, end) seconds of the section each bar belongs to."""
    starts = [i for i, flag in enumerate(section_flags) if flag] or [0]
    spans = []
    for i in range(len(section_flags)):
        first = max(s for s in starts if s <= i) if any(s <= i for s in starts) else 0
        later = [s for s in starts if s > i]
        last = later[0] if later else len(section_flags)
        spans.append((bar_times[first], bar_times[last]))
    return spans


def fade_factor(analysis, start: float, end: float) -> float:
    factor = 1.0
    for t in analysis.transitions:
        if t.start < end and t.end > start:
            factor = min(factor, DISSOLVE_STRENGTH if t.kind == "dissolve" else FADE_STRENGTH)
    return factor


def bar_controls(analysis, bar_times: list[float], section_flags: list[bool],
                 options) -> list[BarControls]:
    """One BarControls per bar; `bar_times` has one more entry than bars (the end of the last)."""
    m_times, m_smooth = np.asarray(analysis.motion.times), np.asarray(analysis.motion.smooth)
    c = analysis.colour
    c_times = np.asarray(c.times)
    columns = {name: np.asarray(getattr(c, name)) for name in ("brightness", "saturation", "warmth")}
    spans = section_spans(bar_times, section_flags)
    controls = []
    for i, flag in enumerate(section_flags):
        start, end = bar_times[i], bar_times[i + 1]
        level = float(np.clip(window_mean(m_times, m_smooth, start, end, analysis.motion.mean)
                              / MOTION_FULL_SCALE, 0.0, 1.0))
        density = PINNED_DENSITY.get(options.density or "", 2.0 + 14.0 * level)
        strength = (56.0 + 48.0 * level) * fade_factor(analysis, start, end)
        s0, s1 = spans[i]
        section = {k: window_mean(c_times, v, s0, s1, getattr(c, f"mean_{k}")) for k, v in columns.items()}
        mode = options.mode or ("major" if valence(**section) >= MAJOR_VALENCE else "minor")
        if options.key is not None and options.mode is None:
            mode = options.key.mode
        register = 52.0 + 20.0 * window_mean(c_times, columns["brightness"], start, end, c.mean_brightness)
        controls.append(BarControls(round(density, 3), round(strength, 3), mode, round(register, 3),
                                    bool(flag or i == 0)))
    return controls
