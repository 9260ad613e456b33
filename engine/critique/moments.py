"""Key moments of the picture and their A/B/C grades against the music's changes.

Key moments: every hard cut (its first new frame), every gradual transition
(its midpoint: half one shot, half the next; the black point of a fade), and
up to `MAX_MOTION_PEAKS` motion peaks (a local maximum of the smoothed motion
curve at least `MOTION_PEAK_MIN` high and prominent, and `PEAK_CLEARANCE_S`
away from any cut or transition).

Grades, as HarmonySet asks annotators (seed 000, appendix): the signed offset
from the moment to the nearest musical change (`music.Change`) decides:

- A: a change within one video frame (1/fps s) — "precisely in sync";
- B: a change within `B_WINDOW_S` (0.5 s, about one beat at 120 BPM) — "near
  the turning point but not strongly synchronized";
- C: no change within that window, or the music has already ended.

Density: busy music must earn nothing by being busy, so the rhythm score uses
`agreement`, the credit of the grades above chance: (observed − chance) /
(1 − chance), where chance is the mean credit a moment would get at a
uniformly random time of the clip (`chance_credit`, on a `CHANCE_STEP_S` grid)
against the same changes. Changes are novelty peaks (changes.py), at most one
per two beats.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

B_WINDOW_S = 0.5
MAX_MOTION_PEAKS = 3
MOTION_PEAK_MIN = 0.02  # mean RGB change over 5 frames; calmer peaks are not moments
MOTION_PEAK_PROMINENCE = 0.5  # of the peak's height above the clip's median motion
PEAK_CLEARANCE_S = 1.0
CHANCE_STEP_S = 0.01
CREDIT = {"A": 1.0, "B": 0.4, "C": 0.0}
WEIGHT = {"cut": 1.0, "transition": 1.0, "motion peak": 0.5}


@dataclass
class KeyMoment:
    time: float  # seconds from the clip start
    kind: str  # "cut" | "transition" | "motion peak"
    grade: str  # "A" | "B" | "C"
    offset: Optional[float]  # seconds from the moment to the nearest change (+ after); None: none near
    change: Optional[str]  # the kind of that change ("harmony", "texture", "accent")

    @property
    def clock(self) -> str:
        return clock(self.time)


def clock(seconds: float) -> str:
    """mm:ss.s, the form every time in the critique is written in."""
    minutes, rest = divmod(max(0.0, seconds), 60.0)
    if round(rest, 1) >= 60.0:
        minutes, rest = minutes + 1, 0.0
    return f"{int(minutes):02d}:{rest:04.1f}"


def harmonyset_clock(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes:02d}:{rest:02d}"


def video_moments(analysis) -> list[tuple[float, str]]:
    moments = [(c.time, "cut") for c in analysis.cuts]
    moments += [((t.start + t.end) / 2, "transition") for t in analysis.transitions]
    busy = [m for m, _ in moments] + [t.start for t in analysis.transitions] + [t.end for t in analysis.transitions]
    moments += [(t, "motion peak") for t in motion_peaks(analysis, busy)]
    return sorted(moments)


def motion_peaks(analysis, busy: list[float]) -> list[float]:
    times, smooth = np.asarray(analysis.motion.times), np.asarray(analysis.motion.smooth)
    if len(smooth) < 3:
        return []
    base = float(np.median(smooth))
    peaks, prominences = peaks_and_prominences(smooth, MOTION_PEAK_MIN)
    keep = [(prominences[i], times[p]) for i, p in enumerate(peaks)
            if prominences[i] >= MOTION_PEAK_PROMINENCE * (smooth[p] - base) > 0
            and all(abs(times[p] - b) >= PEAK_CLEARANCE_S for b in busy)]
    return sorted(t for _, t in sorted(keep, reverse=True)[:MAX_MOTION_PEAKS])


def peaks_and_prominences(x: np.ndarray, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of `x` at least `height` high (a flat top: its middle sample) and their
    prominences: `scipy.signal.find_peaks(x, height=height, prominence=(0, None))`, without
    importing scipy.signal (a second of CPU on every cold `cuesmith score`)."""
    rising = np.flatnonzero(np.diff(x) > 0) + 1  # a top starts where x rises
    peaks = []
    for start in rising:
        end = start
        while end + 1 < len(x) and x[end + 1] == x[start]:
            end += 1
        if end + 1 < len(x) and x[end + 1] < x[start]:
            peaks.append((start + end) // 2)
    peaks = np.array(sorted(set(peaks)), dtype=int)
    peaks = peaks[x[peaks] >= height] if len(peaks) else peaks
    prominences = np.empty(len(peaks))
    for i, p in enumerate(peaks):
        higher_left = np.flatnonzero(x[:p] > x[p])
        higher_right = np.flatnonzero(x[p + 1:] > x[p])
        left = x[higher_left[-1] + 1 if len(higher_left) else 0:p + 1].min()
        right = x[p:p + 1 + higher_right[0] if len(higher_right) else len(x)].min()
        prominences[i] = x[p] - max(left, right)
    return peaks, prominences


def grade(time: float, kind: str, change_times: np.ndarray, change_kinds: list[str], frame: float,
          music_end: float) -> KeyMoment:
    if time > music_end or not len(change_times):
        return KeyMoment(round(time, 3), kind, "C", None, None)
    i = int(np.argmin(np.abs(change_times - time)))
    offset = float(change_times[i] - time)
    if abs(offset) <= frame + 1e-9:
        letter = "A"
    elif abs(offset) <= B_WINDOW_S:
        letter = "B"
    else:
        return KeyMoment(round(time, 3), kind, "C", None, None)
    return KeyMoment(round(time, 3), kind, letter, round(offset, 3), change_kinds[i])


def grade_moments(analysis, music) -> list[KeyMoment]:
    ordered = sorted(music.changes, key=lambda c: c.time)
    times = np.array([c.time for c in ordered])
    kinds = [c.kind for c in ordered]
    frame = 1.0 / analysis.fps if analysis.fps else 1.0 / 30
    return [grade(t, k, times, kinds, frame, music.duration) for t, k in video_moments(analysis)]


def sync_credit(moments: list[KeyMoment]) -> Optional[float]:
    """Weighted mean credit of the grades (A 1, B 0.4, C 0); None without moments."""
    if not moments:
        return None
    weights = np.array([WEIGHT[m.kind] for m in moments])
    credit = np.array([CREDIT[m.grade] for m in moments])
    return float((weights * credit).sum() / weights.sum())


def chance_credit(music, fps: float, duration: float) -> float:
    """Mean grade credit of a moment at a uniformly random time of the clip, against `music`'s changes."""
    times = np.array(sorted(c.time for c in music.changes))
    end = min(duration, music.duration)
    if not len(times) or end <= 0:
        return 0.0
    grid = np.arange(0.0, duration, CHANCE_STEP_S)
    i = np.clip(np.searchsorted(times, grid), 1, len(times)) if len(times) > 1 else np.ones(len(grid), int)
    left, right = times[np.maximum(i - 1, 0)], times[np.minimum(i, len(times) - 1)]
    gap = np.minimum(np.abs(grid - left), np.abs(grid - right))
    frame = 1.0 / fps if fps else 1.0 / 30
    credit = np.where(gap <= frame + 1e-9, CREDIT["A"], np.where(gap <= B_WINDOW_S, CREDIT["B"], CREDIT["C"]))
    credit[grid > end] = 0.0
    return float(credit.mean())


def agreement(moments: list[KeyMoment], chance: float) -> Optional[float]:
    """Grade credit above chance, 0..1; None without moments."""
    observed = sync_credit(moments)
    if observed is None:
        return None
    return float(np.clip((observed - chance) / max(1.0 - chance, 1e-9), 0.0, 1.0))


def harmonyset_line(moments: list[KeyMoment]) -> str:
    """Up to three moments as HarmonySet writes them ('00:10,A; 00:20,B'); '0' without moments.
    Cuts and transitions first, then motion peaks, each in time order."""
    if not moments:
        return "0"
    chosen = sorted([m for m in moments if m.kind != "motion peak"] + [m for m in moments if m.kind == "motion peak"],
                    key=lambda m: m.kind == "motion peak")[:3]
    return "; ".join(f"{harmonyset_clock(m.time)},{m.grade}" for m in sorted(chosen, key=lambda m: m.time))
