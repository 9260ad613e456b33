"""Every number that changes what `analyze` reports, in one place; part of the analysis cache key.

The cache key also holds a hash of the source of the modules that compute the
analysis (`code_hash`), so editing a detector can never serve a result the old
code made.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

# The modules whose code decides the analysis' numbers; a change to any of them is a new cache key.
ANALYSIS_MODULES = ("analysis.py", "cuts.py", "decode.py", "frames.py", "settings.py", "tempo.py")


@dataclass(frozen=True)
class AnalysisSettings:
    """The analysis' thresholds, hops and sizes; the defaults are the tested ones."""

    # decoding
    analysis_width: int = 128  # frames are scaled down once, in swscale, to this width
    # skip H.264/HEVC in-loop deblocking: averaged away at analysis size; on a real 720p H.264 clip 12% less
    # CPU, motion energy 3% higher
    fast_decode: bool = True
    # per-frame measures
    hist_levels: int = 8  # joint RGB histogram levels per channel (8**3 = 512 bins), for cuts and fades
    motion_interval: int = 5  # frames between the two pictures of a motion difference (V-MusProd)
    # hard cuts
    cut_floor: float = 0.04  # absolute minimum of the cut score (a same-background jump cut scores ~0.05)
    cut_ratio: float = 3.0  # cut score over the mean of its neighbours' scores
    cut_neighbours: int = 2  # frames on each side for that mean
    flash_return: float = 0.35  # a frame within 2 of the cut this close (histogram) to the frame before: a flash
    fade_step: float = 0.3  # a change at most this share unexplained by gain and offset (RMS) may be a fade's step:
    flat_cut: float = 0.1  # if under this mean pixel change and next to other such steps, it is not a cut
    fade_context: int = 5  # frames on each side where a fade's other steps are looked for
    held_change: float = 1 / 255  # a mean pixel change under this: the picture held still
    # gradual transitions (twin comparison)
    gradual_step: float = 0.05  # histogram change per frame that counts as "changing"
    gradual_total: float = 0.45  # accumulated histogram change that makes a run a transition
    gradual_min_frames: int = 3
    max_hold: int = 4  # frames an encoder may hold a slowly changing picture still inside a transition
    dark: float = 0.06  # mean luma under which a frame is black, for fades
    bright: float = 0.92  # mean luma over which a frame is white, for fades
    fade_gap_s: float = 1.0  # at most this much black (white) between a fade-out and the following fade-in
    # curves
    smooth_s: float = 0.5  # width of the moving average that makes the motion curve
    colour_sample_s: float = 0.5  # one colour sample (and log-chroma histogram) every this many seconds
    log_chroma_bins: int = 16  # HistoGAN RGB-uv histogram: (3, bins, bins) per colour sample

    def key(self) -> str:
        """These settings and the analysis code, as one short hex string."""
        text = json.dumps(asdict(self), sort_keys=True) + code_hash()
        return hashlib.sha256(text.encode()).hexdigest()[:16]


DEFAULT_SETTINGS = AnalysisSettings()


@lru_cache(maxsize=1)
def code_hash() -> str:
    digest = hashlib.sha256()
    for path in analysis_sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def analysis_sources() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [here / name for name in ANALYSIS_MODULES]
