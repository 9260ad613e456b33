"""Per-frame measurements on the small RGB frames: the only pass over pixels."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HIST_BITS = 3  # joint RGB histogram with 8 levels per channel (512 bins) for cut detection
MOTION_INTERVAL = 5  # frames between the two pictures of a motion difference (V-MusProd)


BATCH = 32  # frames measured per numpy call: per-call overhead dominated frame-at-a-time


@dataclass
class FrameStats:
    """Columns of per-frame measurements, filled while decoding; call `finish()` before reading them."""

    times: list[float] = field(default_factory=list)
    histograms: np.ndarray = field(default_factory=lambda: np.zeros((0, 1 << (3 * HIST_BITS)), np.float32))
    pixel_change: np.ndarray = field(default_factory=lambda: np.zeros(0))  # mean |RGB_t - RGB_t-1| / 255
    motion: np.ndarray = field(default_factory=lambda: np.zeros(0))  # mean |RGB_t - RGB_t-k| / 255
    brightness: np.ndarray = field(default_factory=lambda: np.zeros(0))  # mean luma 0..1
    saturation: np.ndarray = field(default_factory=lambda: np.zeros(0))  # mean HSV saturation 0..1
    warmth: np.ndarray = field(default_factory=lambda: np.zeros(0))  # mean (R - B) / 255, -1..1
    _pending: list[np.ndarray] = field(default_factory=list, repr=False)
    _tail: np.ndarray | None = field(default=None, repr=False)  # the last MOTION_INTERVAL frames
    _chunks: dict[str, list[np.ndarray]] = field(default_factory=dict, repr=False)

    def add(self, t: float, rgb: np.ndarray) -> None:
        self.times.append(t)
        self._pending.append(rgb)
        if len(self._pending) >= BATCH:
            self._measure_pending()

    def finish(self) -> "FrameStats":
        if self._pending:
            self._measure_pending()
        for name, chunks in self._chunks.items():
            setattr(self, name, np.concatenate(chunks))
        return self

    def __len__(self) -> int:
        return len(self.times)

    def _measure_pending(self) -> None:
        batch = np.stack(self._pending)
        self._pending = []
        pixels = batch.astype(np.int16)
        history = pixels if self._tail is None else np.concatenate([self._tail, pixels])
        first = len(self.times) - len(batch)  # global index of the batch's first frame
        carried = len(history) - len(batch)
        index = np.arange(first, first + len(batch))
        previous = np.maximum(index - 1, 0)
        distant = np.where(index >= MOTION_INTERVAL, index - MOTION_INTERVAL, previous)
        local = lambda g: g - first + carried  # noqa: E731
        means = batch.mean(axis=(1, 2), dtype=np.float32) / 255.0
        columns = {
            "histograms": joint_histograms(batch),
            "pixel_change": np.abs(pixels - history[local(previous)]).mean(axis=(1, 2, 3)) / 255.0,
            "motion": np.abs(pixels - history[local(distant)]).mean(axis=(1, 2, 3)) / 255.0,
            "brightness": means @ np.array([0.299, 0.587, 0.114], np.float32),
            "saturation": mean_saturation(batch),
            "warmth": means[:, 0] - means[:, 2],
        }
        for name, values in columns.items():
            self._chunks.setdefault(name, []).append(np.asarray(values))
        self._tail = history[-MOTION_INTERVAL:]


def joint_histograms(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 512) joint RGB histograms, each summing to 1."""
    bins = 1 << (3 * HIST_BITS)
    q = (frames >> (8 - HIST_BITS)).astype(np.int32)
    index = (q[..., 0] << (2 * HIST_BITS)) | (q[..., 1] << HIST_BITS) | q[..., 2]
    index += (np.arange(len(frames), dtype=np.int32) * bins)[:, None, None]
    counts = np.bincount(index.ravel(), minlength=bins * len(frames)).reshape(len(frames), bins)
    return (counts / counts.sum(axis=1, keepdims=True)).astype(np.float32)


def mean_saturation(frames: np.ndarray) -> np.ndarray:
    """Mean HSV saturation per frame, (max - min) / max per pixel; black pixels count as 0."""
    r, g, b = frames[..., 0], frames[..., 1], frames[..., 2]  # numpy reduces a 3-long last axis slowly
    high = np.maximum(np.maximum(r, g), b)
    spread = (high - np.minimum(np.minimum(r, g), b)).astype(np.float32)
    return (spread / np.maximum(high, 1).astype(np.float32)).mean(axis=(-2, -1))


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
