"""Emotion: valence and arousal of picture and music, mapped onto HarmonySet's labels.

The thresholds (valence split, arousal bands) and the labels are music/mood.py's,
shared with the planner. The music is read from the music itself, by what
listeners associate with valence and arousal (mode, harmony, tempo, register,
loudness, density) — not by the planner's rule that picked the mode from the picture.

Picture (per clip and per shot):
  valence = mood.picture_valence (0.5·brightness + 0.3·saturation + 0.2·(warmth + 1)/2)
  arousal = 0.7·motion level + 0.3·min(1, cuts per minute / 30)
  (motion level = mean smoothed motion / video.tempo.MOTION_FULL_SCALE, clipped to 0..1)

Music:
  valence = 0.45·mode + 0.25·harmony + 0.15·tempo level + 0.15·register
  arousal = 0.35·tempo level + 0.25·loudness level + 0.25·density level + 0.15·register
  (mode: major 1, minor 0, unknown 0.5; harmony: the share of beats whose
   best-fitting triad is major, MusicFacts.harmony_major, else the mode value;
   tempo level = (BPM − 60)/80; register = MusicFacts.brightness (MIDI mean
   pitch 48..84, audio spectral centroid 500..4000 Hz); loudness level =
   (LUFS + 30)/22 for audio, mean velocity/127 for MIDI; density level =
   onsets per second / 8; all clipped to 0..1)

Alignment of picture and music, from dV and dA (music − picture):
  consistent |dV| < 0.2 and |dA| < 0.25; contrast: valence on opposite sides of
  the split by more than 0.3 in total; imbalanced: |dA| ≥ 0.35 with valence on the
  same side; partially consistent: one of |dV| < 0.2, |dA| < 0.25; else unrelated.
  Score = 1 + 9·(1 − min(1, √(dV² + dA²)/0.7)).

Richness: "abrupt" when the music's level, in medians over whole `LEVEL_WINDOW_S`
windows (a partial window at the end is dropped), jumps by
`ABRUPT_DB` from one window to the next while either side is louder than
`AUDIBLE_DB`, away from any cut and from the first and last window (music
starting from or ending in silence is not abrupt); "rich" when the shots carry
at least two emotion labels and the music has a dynamic range of
`RICH_RANGE_DB` or more; else "single".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..music.mood import VALENCE_SPLIT, label, picture_valence
from ..video.tempo import MOTION_FULL_SCALE

ABRUPT_DB = 12.0
AUDIBLE_DB = -45.0
LEVEL_WINDOW_S = 1.0
RICH_RANGE_DB = 6.0


@dataclass
class Affect:
    valence: float
    arousal: float
    label: str


def clip01(x: float) -> float:
    return float(np.clip(x, 0.0, 1.0))


def picture_affect(brightness: float, saturation: float, warmth: float, motion: float,
                   cuts_per_minute: float) -> Affect:
    v = picture_valence(brightness, saturation, warmth)
    a = 0.7 * clip01(motion / MOTION_FULL_SCALE) + 0.3 * min(1.0, cuts_per_minute / 30.0)
    return Affect(round(v, 3), round(a, 3), label(v, a, warmth))


def video_affect(analysis) -> Affect:
    c = analysis.colour
    minutes = max(analysis.duration, 1e-6) / 60.0
    return picture_affect(c.mean_brightness, c.mean_saturation, c.mean_warmth, analysis.motion.mean,
                          len(analysis.cuts) / minutes)


def shot_labels(analysis) -> list[str]:
    """The emotion label of each shot (between hard cuts)."""
    edges = [0.0] + [c.time for c in analysis.cuts] + [analysis.duration]
    c, m = analysis.colour, analysis.motion
    ct, mt = np.asarray(c.times), np.asarray(m.times)
    labels = []
    for start, end in zip(edges[:-1], edges[1:]):
        ci, mi = (ct >= start) & (ct < end), (mt >= start) & (mt < end)
        if not ci.any() or not mi.any():
            continue
        affect = picture_affect(float(np.mean(np.asarray(c.brightness)[ci])), float(np.mean(np.asarray(c.saturation)[ci])),
                                float(np.mean(np.asarray(c.warmth)[ci])), float(np.mean(np.asarray(m.smooth)[mi])),
                                len(analysis.cuts) / max(analysis.duration / 60.0, 1e-6))
        labels.append(affect.label)
    return labels


def music_affect(music) -> Affect:
    mode = {"major": 1.0, "minor": 0.0}.get(music.mode or "", 0.5)
    harmony = getattr(music, "harmony_major", None)  # callers may give only the older fields
    harmony = mode if harmony is None else harmony
    tempo = clip01(((music.tempo or 90.0) - 60.0) / 80.0)
    register = music.brightness if music.brightness is not None else 0.5
    if music.loudness_lufs is not None:
        level = clip01((music.loudness_lufs + 30.0) / 22.0)
    else:
        level = clip01((music.velocity or 64.0) / 127.0)
    density = clip01(music.onsets_per_second / 8.0)
    v = 0.45 * mode + 0.25 * harmony + 0.15 * tempo + 0.15 * register
    a = 0.35 * tempo + 0.25 * level + 0.25 * density + 0.15 * register
    return Affect(round(v, 3), round(a, 3), label(v, a))


def alignment(picture: Affect, music: Affect) -> tuple[str, float]:
    dv, da = music.valence - picture.valence, music.arousal - picture.arousal
    opposite = (music.valence - VALENCE_SPLIT) * (picture.valence - VALENCE_SPLIT) < 0 and abs(dv) > 0.3
    if abs(dv) < 0.2 and abs(da) < 0.25:
        name = "consistent"
    elif opposite:
        name = "contrast"
    elif abs(da) >= 0.35:
        name = "imbalanced"
    elif abs(dv) < 0.2 or abs(da) < 0.25:
        name = "partially consistent"
    else:
        name = "unrelated"
    score = 1.0 + 9.0 * (1.0 - min(1.0, float(np.hypot(dv, da)) / 0.7))
    return name, round(score, 1)


def richness(shot_emotions: list[str], music, cut_times: list[float]) -> str:
    if abrupt_jump(music, cut_times):
        return "abrupt"
    if len(set(shot_emotions)) >= 2 and (music.dynamic_range_db or 0.0) >= RICH_RANGE_DB:
        return "rich"
    return "single"


def abrupt_jump(music, cut_times: list[float]) -> bool:
    if len(music.level_db) < 4:
        return False
    times, levels = np.asarray(music.level_times), np.asarray(music.level_db)
    step = float(np.median(np.diff(times)))
    edges = np.arange(0.0, times[-1] + step, LEVEL_WINDOW_S)
    windows = [levels[(times >= a) & (times < a + LEVEL_WINDOW_S)] for a in edges]
    full = [w for w, a in zip(windows, edges) if len(w) >= 0.8 * LEVEL_WINDOW_S / step]
    starts = [a for w, a in zip(windows, edges) if len(w) >= 0.8 * LEVEL_WINDOW_S / step]
    medians = np.array([np.median(w) for w in full])
    for i in range(1, len(medians) - 2):  # the step from window i to i + 1, never the first or last window
        boundary = starts[i + 1]
        if (abs(medians[i + 1] - medians[i]) >= ABRUPT_DB and max(medians[i], medians[i + 1]) > AUDIBLE_DB
                and all(abs(boundary - c) > LEVEL_WINDOW_S for c in cut_times)):
            return True
    return False
