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
CREDIT = {"A": 1.0, "B": 0.4, "C": 0.0}
WEIGHT = {"cut": 1.0, "transition": 1.0, "motion peak": 0.5}


@dataclass
class KeyMoment:
    time: float  # seconds from the clip start
    kind: str  # "cut" | "transition" | "motion peak"
    grade: str  # "A" | "B" | "C"
    offset: Optional[float]  # seconds from the moment to the nearest change (+ after); None: none near
    change: Optional[str]  # the kind of that change ("accent", "chord", "section")

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


def harmonyset_line(moments: list[KeyMoment]) -> str:
    """Up to three moments as HarmonySet writes them ('00:10,A; 00:20,B'); '0' without moments.
    Cuts and transitions first, then motion peaks, each in time order."""
    if not moments:
        return "0"
    chosen = sorted([m for m in moments if m.kind != "motion peak"] + [m for m in moments if m.kind == "motion peak"],
                    key=lambda m: m.kind == "motion peak")[:3]
    return "; ".join(f"{harmonyset_clock(m.time)},{m.grade}" for m in sorted(chosen, key=lambda m: m.time))
