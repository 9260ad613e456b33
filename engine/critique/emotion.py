"""Emotion: valence and arousal of picture and music, mapped onto HarmonySet's labels.

Picture (per clip and per shot):
  valence = 0.5·brightness + 0.3·saturation + 0.2·(warmth + 1)/2   (planning.controls.valence)
  arousal = 0.7·motion level + 0.3·min(1, cuts per minute / 30)
  (motion level = mean smoothed motion / video.tempo.MOTION_FULL_SCALE, clipped to 0..1)

Music:
  valence = 0.5·mode (major 1, minor 0, unknown 0.5) + 0.25·tempo level + 0.25·brightness
  arousal = 0.4·tempo level + 0.3·loudness level + 0.3·density level
  (tempo level = (BPM − 60)/80; loudness level = (LUFS + 30)/22 for audio, mean velocity/127
   for MIDI; density level = onsets per second / 8; all clipped to 0..1)

Labels (`label`), on valence V and arousal A, split at `V_SPLIT`:
  V ≥ 0.5: A < 0.35 relax, A < 0.55 hope, A < 0.85 happy, else surprise;
  V < 0.5: A < 0.35 sad, A < 0.6 anxious, else angry (warm picture) or fear (cold).
  HarmonySet's "creative" and "humor" need to know what is shown: never assigned.

Alignment of picture and music, from dV and dA (music − picture):
  consistent |dV| < 0.2 and |dA| < 0.25; contrast: valence on opposite sides of
  V_SPLIT by more than 0.3 in total; imbalanced: |dA| ≥ 0.35 with valence on the
  same side; partially consistent: one of |dV| < 0.2, |dA| < 0.25; else unrelated.
  Score = 1 + 9·(1 − min(1, √(dV² + dA²)/0.7)).

Richness: "abrupt" when the music's level jumps by `ABRUPT_DB` within 0.3 s away
from any cut; "rich" when the shots carry at least two emotion labels and the music
has a dynamic range of `RICH_RANGE_DB` or more; else "single".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..planning.controls import valence as picture_valence
from ..video.tempo import MOTION_FULL_SCALE

V_SPLIT = 0.5
ABRUPT_DB = 12.0
RICH_RANGE_DB = 6.0


@dataclass
class Affect:
    valence: float
    arousal: float
    label: str


def label(v: float, a: float, warmth: float = 0.0) -> str:
    if v >= V_SPLIT:
        return "relax" if a < 0.35 else "hope" if a < 0.55 else "happy" if a < 0.85 else "surprise"
    if a < 0.35:
        return "sad"
    if a < 0.6:
        return "anxious"
    return "angry" if warmth > 0.1 else "fear"


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
    tempo = clip01(((music.tempo or 90.0) - 60.0) / 80.0)
    bright = music.brightness if music.brightness is not None else 0.5
    if music.loudness_lufs is not None:
        level = clip01((music.loudness_lufs + 30.0) / 22.0)
    else:
        level = clip01((music.velocity or 64.0) / 127.0)
    density = clip01(music.onsets_per_second / 8.0)
    v = 0.5 * mode + 0.25 * tempo + 0.25 * bright
    a = 0.4 * tempo + 0.3 * level + 0.3 * density
    return Affect(round(v, 3), round(a, 3), label(v, a))


def alignment(picture: Affect, music: Affect) -> tuple[str, float]:
    dv, da = music.valence - picture.valence, music.arousal - picture.arousal
    opposite = (music.valence - V_SPLIT) * (picture.valence - V_SPLIT) < 0 and abs(dv) > 0.3
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
    levels = np.asarray(music.level_db) if music.level_db else np.zeros(0)
    if len(levels) > 3:
        times = np.asarray(music.level_times)
        step = max(1, int(round(0.3 / max(float(np.median(np.diff(times))), 1e-3))))
        jumps = np.abs(levels[step:] - levels[:-step])
        for i in np.flatnonzero(jumps >= ABRUPT_DB):
            if all(abs(times[i] - c) > 0.5 for c in cut_times) and levels[i:i + step + 1].max() > -45:
                return "abrupt"
    if len(set(shot_emotions)) >= 2 and (music.dynamic_range_db or 0.0) >= RICH_RANGE_DB:
        return "rich"
    return "single"
