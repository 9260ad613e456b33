"""A tempo range from motion: V-MusProd's linear map from motion to 90-130 BPM.

The baseline mapping, kept as the paper has it: BPM = 90 + 40 * m, with m the
motion energy (mean RGB difference over a 5-frame interval) scaled by
MOTION_FULL_SCALE and clipped to 0..1. The suggestion's centre uses the mean
of the smoothed motion curve, its low and high ends the 25th and 75th
percentiles, so a clip that is calm then frantic gets a wide range.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BPM_SLOW, BPM_FAST = 90.0, 130.0
MOTION_FULL_SCALE = 0.12  # a mean RGB change of 12% over 5 frames is as fast as it gets


@dataclass
class TempoRange:
    bpm: float
    low: float
    high: float
    mapping: str = "v-musprod-linear"


def motion_to_bpm(motion: float | np.ndarray) -> np.ndarray:
    level = np.clip(np.asarray(motion, dtype=np.float64) / MOTION_FULL_SCALE, 0.0, 1.0)
    return BPM_SLOW + (BPM_FAST - BPM_SLOW) * level


def suggest_tempo(smooth_motion: np.ndarray) -> TempoRange:
    if len(smooth_motion) == 0:
        middle = (BPM_SLOW + BPM_FAST) / 2
        return TempoRange(middle, BPM_SLOW, BPM_FAST)
    low, high = np.percentile(smooth_motion, [25, 75])
    return TempoRange(round(float(motion_to_bpm(smooth_motion.mean())), 1),
                      round(float(motion_to_bpm(low)), 1), round(float(motion_to_bpm(high)), 1))
