"""The offline visual encoder's input: measured statistics of each frame on a 7 x 7 grid plus one summary token.

Per token (CLIP ViT-B/32's layout: token 0 sums up the frame, tokens 1..49 are the patches, row by row):
colour mean (RGB) and spread (RGB standard deviation), gradient energy of the luma (horizontal,
vertical), and the mean absolute difference from the decoded frame before it (motion, cuts). The net
projects these N_STATS numbers to its width (nets/vidmuse.py); a CLIP checkpoint would put its
768-wide hidden states in the same (frames, 50, dim) place.

Frames come from one PyAV decode at the analysis width (video/decode.py), sampled at the times asked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from ...progress import Progress, report
from ...video.decode import iter_frames, open_container

GRID = 7
TOKENS_PER_FRAME = 1 + GRID * GRID
STAT_NAMES = ("mean_r", "mean_g", "mean_b", "spread_r", "spread_g", "spread_b", "grad_x", "grad_y", "difference")
N_STATS = len(STAT_NAMES)
STATS_WIDTH = 128  # frames are decoded this wide for the statistics
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)


def frame_stats(rgb: np.ndarray, previous: Optional[np.ndarray]) -> np.ndarray:
    """(H, W, 3) uint8 (and the frame decoded before it) -> (50, N_STATS) float32, values about 0..1."""
    h, w = (rgb.shape[0] // GRID) * GRID, (rgb.shape[1] // GRID) * GRID
    pixels = rgb[:h, :w].astype(np.float32) / 255.0
    before = pixels if previous is None else previous[:h, :w].astype(np.float32) / 255.0
    luma = pixels @ LUMA
    gx = np.zeros_like(luma)
    gy = np.zeros_like(luma)
    gx[:, 1:] = np.diff(luma, axis=1) ** 2
    gy[1:, :] = np.diff(luma, axis=0) ** 2
    per_pixel = np.concatenate([pixels, gx[..., None] * 10, gy[..., None] * 10,
                                np.abs(pixels - before).mean(axis=2, keepdims=True)], axis=2)
    cells = per_pixel.reshape(GRID, h // GRID, GRID, w // GRID, per_pixel.shape[2])
    means = cells.mean(axis=(1, 3)).reshape(GRID * GRID, -1)
    spreads = pixels.reshape(GRID, h // GRID, GRID, w // GRID, 3).std(axis=(1, 3)).reshape(GRID * GRID, 3)
    patches = np.concatenate([means[:, :3], spreads, means[:, 3:]], axis=1)
    summary = np.concatenate([per_pixel[..., :3].mean(axis=(0, 1)), pixels.reshape(-1, 3).std(axis=0),
                              per_pixel[..., 3:].mean(axis=(0, 1))])
    return np.concatenate([summary[None], patches]).astype(np.float32)


def sample_stats(path: Path, times: Sequence[float], start: float = 0.0, end: Optional[float] = None,
                 progress: Optional[Progress] = None) -> np.ndarray:
    """(len(times), 50, N_STATS): the stats of the first decoded frame at or after each time
    (seconds from `start`), in one pass; times past the last frame take the last frame."""
    return np.stack(sample_frames(path, times, frame_stats, start, end, progress=progress))


def sample_frames(path: Path, times: Sequence[float], measure: Callable, start: float = 0.0,
                  end: Optional[float] = None, width: int = STATS_WIDTH, progress: Optional[Progress] = None) -> list:
    """`measure(rgb, previous_rgb)` of the first frame decoded (`width` wide) at or after each time."""
    order = np.argsort(times, kind="stable")
    out: list = [None] * len(times)
    container = open_container(Path(path))
    previous, last, i = None, None, 0
    try:
        for t, rgb, _ in iter_frames(container, Path(path), start, end, width=width):
            while i < len(order) and times[order[i]] <= t - start + 1e-6:
                out[order[i]] = measure(rgb, previous)
                i += 1
                report(progress, "video features", i / max(1, len(order)))
            previous, last = rgb, (rgb, previous)
            if i == len(order):
                break
    finally:
        container.close()
    if i < len(order) and last is not None:
        tail = measure(*last)
        for j in order[i:]:
            out[j] = tail
    return out


class ClipFeatures:
    """The CLIP visual encoder (exporters/clip_export.py's clip_vision.onnx): frames centre-cropped to a
    square, scaled to its input size, CLIP-normalised -> (N, 50, width) last hidden states."""

    BATCH = 16

    def __init__(self, graph: Path):
        from ...runtime.sessions import open_session

        self.session = open_session(graph)
        self.size = int(self.session.get_inputs()[0].shape[2])

    def pixels(self, rgb: np.ndarray, previous=None) -> np.ndarray:
        h, w = rgb.shape[:2]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        square = rgb[top:top + side, left:left + side].astype(np.float32) / 255.0
        index = (np.arange(self.size) * side / self.size).astype(int)  # nearest: frames come near the size already
        return ((square[index][:, index] - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1).astype(np.float32)

    def __call__(self, path: Path, times: Sequence[float], start: float = 0.0, end: Optional[float] = None,
                 aspect: float = 16 / 9, progress: Optional[Progress] = None) -> np.ndarray:
        width = 2 * int(np.ceil(self.size * max(1.0, aspect) / 2))  # the short side at least the input size
        frames = np.stack(sample_frames(path, times, self.pixels, start, end, width, progress))
        return np.concatenate([self.session.run(None, {"pixels": frames[i:i + self.BATCH]})[0]
                               for i in range(0, len(frames), self.BATCH)])
