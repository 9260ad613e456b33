"""Shot boundaries from per-frame measurements: hard cuts and gradual transitions.

Hard cuts: a frame whose change from the previous frame (the geometric mean
of the joint-colour-histogram distance and the mean pixel change) stands
well above both an absolute floor and its neighbours (the idea of
PySceneDetect's AdaptiveDetector), and that does not snap back within two
frames (a flash). The histograms are dithered (frames.joint_histograms), so a
fade moves their mass a little every frame: a flat picture whose level drifts
does not jump from one bin to the next in a single frame. A frame whose change
is all gain and offset (a fade's step, which an encoder may deliver in jumps
on a slow fade) is a cut only if the picture changes a lot (a cut to black or
between flat colours).

Gradual transitions: the twin-comparison method (Zhang et al. 1993): a run of
moderate histogram changes whose accumulated change, from the frame before
the run to its last frame, is as large as a cut's. A run that passes through
black or white (a dip, or a ramp black -> white -> black) is split at the
darkest (brightest) frame, and a fade-out to black (white) followed by a
fade-in from it is one fade through black (white).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .settings import DEFAULT_SETTINGS, AnalysisSettings


@dataclass
class Cut:
    time: float
    frame: int
    score: float


@dataclass
class GradualTransition:
    start: float
    end: float
    kind: str  # "fade" (out to black or white and back in), "fade_in", "fade_out", "dissolve"
    start_frame: int
    end_frame: int
    via: str = ""  # for fades: "black" or "white"


def histogram_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Half the L1 distance of histograms (counts or fractions), 0..1."""
    a = np.asarray(a, dtype=np.float32)
    return 0.5 * np.abs(a - b).sum(axis=-1) / a.sum(axis=-1)


def detect_cuts(times: np.ndarray, histograms: np.ndarray, step: np.ndarray, pixel_change: np.ndarray,
                unexplained: np.ndarray, s: AnalysisSettings = DEFAULT_SETTINGS) -> list[Cut]:
    """`step[i]`: histogram distance of frame i from frame i-1 (0 for the first frame);
    `unexplained[i]`: the share of frame i's change that a gain and offset per channel does not explain."""
    scores = np.sqrt(step * pixel_change)
    cuts = []
    for i in np.flatnonzero(scores >= s.cut_floor):
        if i == 0:
            continue
        if is_fade_step(pixel_change, unexplained, i, s):
            continue
        around = np.r_[scores[max(1, i - s.cut_neighbours):i], scores[i + 1:i + 1 + s.cut_neighbours]]
        if len(around) and scores[i] < s.cut_ratio * around.mean():
            continue
        if is_flash(histograms, step, i, s):
            continue
        cuts.append(Cut(float(times[i]), int(i), float(scores[i])))
    return cuts


def is_fade_step(pixel_change: np.ndarray, unexplained: np.ndarray, i: int, s: AnalysisSettings) -> bool:
    """A small change that is all gain and offset, next to others like it: one step of a fade, which an
    encoder may deliver in jumps (holding a slow fade still, then catching up). A lone one is a cut to
    a flat picture."""
    def step_like(j):
        return (pixel_change[j] >= s.held_change) & (unexplained[j] <= s.fade_step)

    if pixel_change[i] >= s.flat_cut or not step_like(i):
        return False
    around = np.r_[max(1, i - s.fade_context):i, i + 1:min(len(pixel_change), i + 1 + s.fade_context)]
    return bool(step_like(around).any())


def is_flash(histograms: np.ndarray, step: np.ndarray, i: int, s: AnalysisSettings) -> bool:
    after = histograms[i + 1:i + 3]
    return bool(len(after) and (histogram_distance(after, histograms[i - 1]) < s.flash_return * step[i]).any())


def detect_gradual(times: np.ndarray, histograms: np.ndarray, step: np.ndarray, brightness: np.ndarray,
                   cuts: list[Cut], s: AnalysisSettings = DEFAULT_SETTINGS) -> list[GradualTransition]:
    step = step.copy()
    cut_frames = [c.frame for c in cuts]
    step[cut_frames] = 0.0  # a hard cut splits runs; it is not part of one
    blank = blank_colours(brightness, s)
    segments = [piece for a, b in changing_runs(step, cut_frames, s)
                for piece in split_at_blanks(brightness, blank, a, b)]
    segments = [(a, b) for a, b in segments
                if b - a + 1 >= s.gradual_min_frames
                and histogram_distance(histograms[max(0, a - 1)], histograms[b]) >= s.gradual_total]
    return [classify(times, brightness, blank, a, b) for a, b in merge_through_blank(times, blank, segments, s)]


def blank_colours(brightness: np.ndarray, s: AnalysisSettings) -> np.ndarray:
    """Per frame: "black", "white" or "" (a picture)."""
    return np.where(brightness < s.dark, "black", np.where(brightness > s.bright, "white", ""))


def changing_runs(step: np.ndarray, cut_frames: list[int], s: AnalysisSettings) -> list[tuple[int, int]]:
    """Maximal runs of frames whose histogram change, averaged over 5 frames, is at least gradual_step.

    Short holds (an encoder keeping a slowly fading picture still for a few frames, then catching up)
    are left out of the average and belong to the run around them; a run's first and last frames are
    ones that changed, and a hard cut is never inside a run.
    """
    holds = [(a, b) for a, b in true_runs(step == 0) if b - a < s.max_hold and a > 0 and b < len(step) - 1]
    counted = np.ones(len(step), bool)
    for a, b in holds:
        counted[a:b + 1] = False
    active = np.zeros(len(step), bool)
    active[counted] = np.convolve(step[counted], np.ones(5) / 5, mode="same") >= s.gradual_step
    for a, b in holds:
        active[a:b + 1] = active[a - 1] and active[b + 1]
    active[cut_frames] = False
    runs = []
    for a, b in true_runs(active):
        moved = a + np.flatnonzero(step[a:b + 1] >= s.gradual_step / 2)
        if len(moved):
            runs.append((int(moved[0]), int(moved[-1])))
    return runs


def true_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each maximal run of True."""
    edges = np.diff(np.r_[False, flags, False].astype(np.int8))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def split_at_blanks(brightness: np.ndarray, blank: np.ndarray, a: int, b: int) -> list[tuple[int, int]]:
    """Run a..b cut at the darkest (brightest) frame of each black (white) stretch with picture on both sides."""
    pieces, first = [], a
    for lo, hi in blank_stretches(blank, a, b):
        if lo <= first or hi >= b:
            continue  # the run starts or ends on black/white: a fade in or out, nothing to split
        inside = brightness[lo:hi + 1]
        turn = lo + int(np.argmin(inside) if blank[lo] == "black" else np.argmax(inside))
        pieces.append((first, turn))
        first = turn + 1
    pieces.append((first, b))
    return pieces


def blank_stretches(blank: np.ndarray, a: int, b: int) -> list[tuple[int, int]]:
    stretches, start = [], None
    for i in range(a, b + 1):
        if blank[i] and (start is None or blank[i] != blank[start]):
            if start is not None:
                stretches.append((start, i - 1))
            start = i
        elif not blank[i] and start is not None:
            stretches.append((start, i - 1))
            start = None
    if start is not None:
        stretches.append((start, b))
    return stretches


def merge_through_blank(times, blank, segments, s: AnalysisSettings):
    """A picture fading out to black (white), then in from it within fade_gap_s: one fade."""
    merged: list[tuple[int, int]] = []
    for a, b in segments:
        if merged:
            pa, pb = merged[-1]
            via = blank[pb]
            if (via and blank[a - 1] == via and not blank[max(0, pa - 1)] and not blank[b]
                    and times[a] - times[pb] <= s.fade_gap_s):
                merged[-1] = (pa, b)
                continue
        merged.append((a, b))
    return merged


def classify(times, brightness, blank, a: int, b: int) -> GradualTransition:
    start = max(0, a - 1)
    first, last = str(blank[start]), str(blank[b])
    if first and last:
        kind, via = "fade", last  # between two blank frames (black to white)
    elif first:
        kind, via = "fade_in", first
    elif last:
        kind, via = "fade_out", last
    else:
        through = darkest_or_brightest(brightness, blank, start, b)
        kind, via = ("fade", through) if through else ("dissolve", "")
    return GradualTransition(float(times[start]), float(times[b]), kind, start, int(b), via)


def darkest_or_brightest(brightness, blank, start: int, end: int) -> Optional[str]:
    colours = set(blank[start:end + 1]) - {""}
    if len(colours) > 1:  # both: the one furthest past its threshold
        span = brightness[start:end + 1]
        return "black" if span.min() < 1.0 - span.max() else "white"
    return str(colours.pop()) if colours else None
