"""Per-frame measurements on the small RGB frames: the only pass over pixels."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HIST_BITS = 3  # joint RGB histogram with 8 levels per channel (512 bins) for cut detection
MOTION_INTERVAL = 5  # frames between the two pictures of a motion difference (V-MusProd)


@dataclass
class FrameStats:
    """Columns of per-frame measurements, filled while decoding."""

    times: list[float] = field(default_factory=list)
    histograms: list[np.ndarray] = field(default_factory=list)  # 512 bins, sum 1
    pixel_change: list[float] = field(default_factory=list)  # mean |RGB_t - RGB_t-1| / 255
    motion: list[float] = field(default_factory=list)  # mean |RGB_t - RGB_t-k| / 255, k = MOTION_INTERVAL
    brightness: list[float] = field(default_factory=list)  # mean luma 0..1
    saturation: list[float] = field(default_factory=list)  # mean HSV saturation 0..1
    warmth: list[float] = field(default_factory=list)  # mean (R - B) / 255, -1..1
    _recent: list[np.ndarray] = field(default_factory=list, repr=False)

    def add(self, t: float, rgb: np.ndarray) -> None:
        pixels = rgb.astype(np.int16)
        previous = self._recent[-1] if self._recent else pixels
        distant = self._recent[0] if len(self._recent) >= MOTION_INTERVAL else previous
        self.times.append(t)
        self.histograms.append(joint_histogram(rgb))
        self.pixel_change.append(float(np.abs(pixels - previous).mean()) / 255.0)
        self.motion.append(float(np.abs(pixels - distant).mean()) / 255.0)
        r, g, b = (pixels[..., c].mean() for c in range(3))
        self.brightness.append(float(0.299 * r + 0.587 * g + 0.114 * b) / 255.0)
        self.saturation.append(mean_saturation(pixels))
        self.warmth.append(float(r - b) / 255.0)
        self._recent.append(pixels)
        if len(self._recent) > MOTION_INTERVAL:
            self._recent.pop(0)

    def __len__(self) -> int:
        return len(self.times)


def joint_histogram(rgb: np.ndarray) -> np.ndarray:
    q = (rgb >> (8 - HIST_BITS)).astype(np.int32)
    index = (q[..., 0] << (2 * HIST_BITS)) | (q[..., 1] << HIST_BITS) | q[..., 2]
    counts = np.bincount(index.ravel(), minlength=1 << (3 * HIST_BITS)).astype(np.float32)
    return counts / counts.sum()


def mean_saturation(pixels: np.ndarray) -> float:
    high = pixels.max(axis=-1)
    low = pixels.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(high > 0, (high - low) / np.maximum(high, 1), 0.0)
    return float(s.mean())


def log_chroma_histogram(rgb: np.ndarray, bins: int = 16, extent: float = 3.0) -> np.ndarray:
    """HistoGAN's RGB-uv histogram: for each channel, log-ratios to the other two, intensity-weighted.

    Returns shape (3, bins, bins), summing to 1. Near-black pixels carry little weight.
    """
    x = rgb.reshape(-1, 3).astype(np.float32) / 255.0 + 1e-3
    intensity = np.sqrt((x ** 2).sum(axis=1))
    log_x = np.log(x)
    out = np.empty((3, bins, bins), dtype=np.float32)
    for c in range(3):
        u = log_x[:, c] - log_x[:, (c + 1) % 3]
        v = log_x[:, c] - log_x[:, (c + 2) % 3]
        out[c], _, _ = np.histogram2d(u, v, bins=bins, range=[[-extent, extent], [-extent, extent]],
                                      weights=intensity)
    total = out.sum()
    return out / total if total > 0 else out
