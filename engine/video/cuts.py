"""Shot boundaries from per-frame measurements: hard cuts and gradual transitions.

Hard cuts: a frame whose change from the previous frame (the geometric mean
of the joint-colour-histogram distance and the mean pixel change) stands
well above both an absolute floor and its neighbours (the idea of
PySceneDetect's AdaptiveDetector), and that does not snap back within two
frames (a flash). Gradual transitions: the twin-comparison method (Zhang et
al. 1993): a run of moderate histogram changes whose accumulated change, from
the frame before the run to its last frame, is as large as a cut's; runs
joined by dark frames are one fade through black.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CUT_FLOOR = 0.04  # absolute minimum of the cut score (a same-background jump cut scores ~0.05)
CUT_RATIO = 3.0  # cut score over the mean of its neighbours' scores
NEIGHBOURS = 2  # frames on each side for that mean
FLASH_RETURN = 0.35  # a frame within 2 of the cut this close (histogram) to the frame before is a flash
GRADUAL_STEP = 0.05  # histogram change per frame that counts as "changing"
GRADUAL_TOTAL = 0.45  # accumulated histogram change that makes a run a transition
GRADUAL_MIN_FRAMES = 3
DARK = 0.06  # mean luma under which a frame is "black" for fades
FADE_GAP_S = 1.0  # at most this much black between a fade-out and the following fade-in


@dataclass
class Cut:
    time: float
    frame: int
    score: float


@dataclass
class GradualTransition:
    start: float
    end: float
    kind: str  # "fade" (through black), "fade_in", "fade_out", "dissolve"
    start_frame: int
    end_frame: int


def histogram_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 0.5 * np.abs(a - b).sum(axis=-1)


def cut_scores(histograms: np.ndarray, pixel_change: np.ndarray) -> np.ndarray:
    step = np.zeros(len(histograms), dtype=np.float64)
    step[1:] = histogram_distance(histograms[1:], histograms[:-1])
    return np.sqrt(step * pixel_change)


def detect_cuts(times: np.ndarray, histograms: np.ndarray, pixel_change: np.ndarray) -> list[Cut]:
    scores = cut_scores(histograms, pixel_change)
    cuts = []
    for i in range(1, len(scores)):
        if scores[i] < CUT_FLOOR:
            continue
        around = np.r_[scores[max(1, i - NEIGHBOURS):i], scores[i + 1:i + 1 + NEIGHBOURS]]
        if len(around) and scores[i] < CUT_RATIO * around.mean():
            continue
        if is_flash(histograms, i):
            continue
        cuts.append(Cut(float(times[i]), i, float(scores[i])))
    return cuts


def is_flash(histograms: np.ndarray, i: int) -> bool:
    before = histograms[i - 1]
    jump = histogram_distance(histograms[i], before)
    after = histograms[i + 1:i + 3]
    return bool(len(after) and (histogram_distance(after, before) < FLASH_RETURN * jump).any())


def detect_gradual(times: np.ndarray, histograms: np.ndarray, brightness: np.ndarray,
                   cuts: list[Cut]) -> list[GradualTransition]:
    step = np.zeros(len(histograms))
    step[1:] = histogram_distance(histograms[1:], histograms[:-1])
    step[[c.frame for c in cuts]] = 0.0  # a hard cut splits runs; it is not part of one
    runs = changing_runs(step)
    runs = [(a, b) for a, b in runs
            if b - a + 1 >= GRADUAL_MIN_FRAMES
            and histogram_distance(histograms[max(0, a - 1)], histograms[b]) >= GRADUAL_TOTAL]
    return [classify(times, brightness, a, b) for a, b in merge_through_black(times, brightness, runs)]


def changing_runs(step: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of frames whose histogram change (smoothed over 3 frames) is at least GRADUAL_STEP."""
    smooth = np.convolve(step, np.ones(3) / 3, mode="same")
    active = (smooth >= GRADUAL_STEP) & (step > 0)
    runs, start = [], None
    for i, on in enumerate(active):
        if on and start is None:
            start = i
        elif not on and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(active) - 1))
    return runs


def merge_through_black(times, brightness, runs):
    merged: list[tuple[int, int]] = []
    for a, b in runs:
        if merged:
            pa, pb = merged[-1]
            gap = brightness[pb:a + 1]
            if times[a] - times[pb] <= FADE_GAP_S and len(gap) and gap.min() < DARK:
                merged[-1] = (pa, b)
                continue
        merged.append((a, b))
    return merged


def classify(times, brightness, a: int, b: int) -> GradualTransition:
    start = max(0, a - 1)
    darkest = brightness[start:b + 1].min()
    if brightness[start] < DARK and brightness[b] >= DARK:
        kind = "fade_in"
    elif brightness[b] < DARK and brightness[start] >= DARK:
        kind = "fade_out"
    elif darkest < DARK:
        kind = "fade"
    else:
        kind = "dissolve"
    return GradualTransition(float(times[start]), float(times[b]), kind, start, b)
