"""Per-bar control attributes from the picture (ARCHITECTURE.md, "the explicit bridge").

The mapping, bar by bar (times are the bar's span in seconds of the clip):

- motion → density and strength: m = mean smoothed motion in the bar over
  `video.tempo.MOTION_FULL_SCALE`, clipped to 0..1 (the scale V-MusProd's
  tempo map uses); density = POP909's onsets per bar at the percentile
  10 + 80·m (`motion_density`), strength (mean velocity) = 56 + 48·m. A
  pinned density (low/mid/high: POP909's 10th/50th/90th percentile) wins.
- fades → dynamics: a bar that overlaps a fade (through black, in or out)
  plays at `FADE_STRENGTH` of its strength, one overlapping a dissolve at
  `DISSOLVE_STRENGTH`: the music breathes with the picture.
- colour → mode, valence and register: valence = 0.5·brightness +
  0.3·saturation + 0.2·(warmth + 1)/2 over the bar's section (the shot it
  lies in); major when valence ≥ `MAJOR_VALENCE`, else minor; register
  (mean MIDI pitch) = 52 + 20·brightness of the bar. A pinned mode wins.
- cuts → sections: section_start is set on the bar a cut starts (or lies in).
- form → role: the first section is a verse (POP909's `A`), a later section
  with more motion than the clip's mean a chorus (`B`); a role holds for at
  least `MIN_ROLE_BARS` bars, so quick cuts do not flip it; a clip of one
  section of 8 bars or more turns to the chorus at its middle phrase
  (`form_roles`).
  Every bar has a melody: a cue is the body of a song, not its intro.
- colour → tonic: warm, bright pictures sit on the sharp side of the circle
  of fifths, cool, dark ones on the flat side (`picture_tonic`); with the
  mode, all 24 keys are reachable. A pinned key wins.
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
# onsets per 4/4 bar (melody + accompaniment) in POP909 001-700's melodic bars: the 10th, 25th,
# 50th, 75th and 90th percentiles (`density_quantiles`, measured on the training split's tokens)
DENSITY_QUANTILES = (12.0, 16.0, 21.0, 26.0, 31.0)
PINNED_DENSITY = {"low": DENSITY_QUANTILES[0], "mid": DENSITY_QUANTILES[2], "high": DENSITY_QUANTILES[4]}
PHRASE_BARS = 4  # a chorus starts on a phrase boundary
MIN_ROLE_BARS = 3  # bars a role lasts at least
CHORUS_MIN_BARS = 8  # a one-section clip this long turns to a chorus at its middle phrase
WARMTH_FULL_SCALE = 0.25  # |mean (R - B)/255| that counts as fully warm or cool


def clip_valence(analysis) -> float:
    c = analysis.colour
    return valence(c.mean_brightness, c.mean_saturation, c.mean_warmth)


def plan_key(analysis, options) -> Key:
    if options.key is not None:
        return options.key
    mode = options.mode or ("major" if clip_valence(analysis) >= MAJOR_VALENCE else "minor")
    return picture_tonic(analysis.colour.mean_brightness, analysis.colour.mean_warmth, mode)


def picture_tonic(brightness: float, warmth: float, mode: str) -> Key:
    """A key from the picture: sharper (G, D, A...) the warmer and brighter, flatter (F, Bb...) the cooler
    and darker; a minor key takes its relative major's place on the circle (E minor where G major)."""
    level = 0.5 * float(np.clip(warmth / WARMTH_FULL_SCALE, -1, 1)) + 0.5 * (2 * float(np.clip(brightness, 0, 1)) - 1)
    fifths = int(np.clip(round(level * 6), -6, 5))  # -6 (Gb) .. +5 (B) from C
    major_tonic = (7 * fifths) % 12
    return Key(major_tonic if mode == "major" else (major_tonic + 9) % 12, mode)


def motion_density(level: float) -> float:
    """Onsets per 4/4 bar for a motion level 0..1: POP909's 10th..90th percentile, piecewise linear."""
    points = np.linspace(0.0, 1.0, len(DENSITY_QUANTILES))
    return float(np.interp(level, points, DENSITY_QUANTILES))


def form_roles(section_flags: list[bool], levels: list[float]) -> list[str]:
    """verse / chorus per bar (see the module doc); every bar melodic."""
    n = len(section_flags)
    starts = [i for i, flag in enumerate(section_flags) if flag or i == 0]
    bounds = list(zip(starts, starts[1:] + [n]))
    if len(bounds) == 1:
        middle = (n // 2) // PHRASE_BARS * PHRASE_BARS
        turn = middle if n >= CHORUS_MIN_BARS and middle > 0 else n
        return ["verse" if i < turn else "chorus" for i in range(n)]
    overall = float(np.mean(levels)) if levels else 0.0
    roles: list[str] = []
    changed = 0  # bar where the role last changed
    for index, (a, b) in enumerate(bounds):
        role = "chorus" if index > 0 and float(np.mean(levels[a:b])) >= overall else "verse"
        if roles and role != roles[-1] and a - changed < MIN_ROLE_BARS:
            role = roles[-1]
        elif roles and role != roles[-1]:
            changed = a
        roles += [role] * (b - a)
    return roles


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
    levels = [float(np.clip(window_mean(m_times, m_smooth, bar_times[i], bar_times[i + 1], analysis.motion.mean)
                            / MOTION_FULL_SCALE, 0.0, 1.0)) for i in range(len(section_flags))]
    roles = form_roles(section_flags, levels)
    controls = []
    for i, flag in enumerate(section_flags):
        start, end = bar_times[i], bar_times[i + 1]
        level = levels[i]
        density = PINNED_DENSITY.get(options.density or "", motion_density(level))
        strength = (56.0 + 48.0 * level) * fade_factor(analysis, start, end)
        s0, s1 = spans[i]
        section = {k: window_mean(c_times, v, s0, s1, getattr(c, f"mean_{k}")) for k, v in columns.items()}
        mode = options.mode or ("major" if valence(**section) >= MAJOR_VALENCE else "minor")
        if options.key is not None and options.mode is None:
            mode = options.key.mode
        register = 52.0 + 20.0 * window_mean(c_times, columns["brightness"], start, end, c.mean_brightness)
        controls.append(BarControls(round(density, 3), round(strength, 3), mode, round(register, 3),
                                    bool(flag or i == 0), roles[i]))
    return controls
