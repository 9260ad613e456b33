"""Per-frame measurements on the small RGB frames: the only pass over pixels.

`FrameStats` measures frames in batches on one worker thread, so the numpy
work overlaps the decoding of the next frames (PyAV and numpy both release
the GIL for their heavy parts).
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from .settings import DEFAULT_SETTINGS, AnalysisSettings

BATCH = 32  # frames measured per numpy call: per-call overhead dominated frame-at-a-time
QUEUED_BATCHES = 3  # batches waiting for the worker before decoding waits: bounds memory
COLUMNS = ("histograms", "step", "pixel_change", "unexplained", "motion", "brightness", "saturation", "warmth")


class FrameStats:
    """Columns of per-frame measurements, filled while decoding; call `finish()` before reading them.

    histograms: (N, levels**3) uint16 (uint32 for frames over 65,535 pixels) pixel counts of the dithered joint RGB histogram;
    step: histogram distance from the previous frame; pixel_change: mean |RGB_t - RGB_t-1| / 255;
    unexplained: the share of that change (RMS) left after the best gain and offset per channel
    (a fade's step is all gain and offset: near 0; a cut's is not, unless it cuts to a flat picture);
    motion: mean |RGB_t - RGB_t-k| / 255 (k = motion_interval); brightness: mean luma 0..1;
    saturation: mean HSV saturation 0..1; warmth: mean (R - B) / 255, -1..1;
    samples: (time, log-chroma histogram) every colour_sample_s.
    """

    def __init__(self, settings: AnalysisSettings = DEFAULT_SETTINGS, first_sample: float = 0.0):
        """`first_sample`: the time of the first colour sample (a span that starts later in the clip takes
        the next multiple of colour_sample_s at or after its start, as one pass over the clip would)."""
        self.settings = settings
        self.times: list[float] = []
        self.samples: list[tuple[float, np.ndarray]] = []
        self._pending: list[np.ndarray] = []
        self._sample_rows: list[int] = []  # rows of the pending batch that are colour samples
        self._next_sample = first_sample
        self._head: list[np.ndarray] = []  # the first motion_interval frames: a span's seam with the one before
        self._tail: np.ndarray | None = None  # the last motion_interval frames, and their histograms
        self._tail_histograms: np.ndarray | None = None
        self._tail_pixels: np.ndarray | None = None  # the last frame as float32 (pixels, 3)
        self._chunks: dict[str, list[np.ndarray]] = {name: [] for name in COLUMNS}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frame-stats")
        self._queued: list[Future] = []

    def add(self, t: float, rgb: np.ndarray) -> None:
        if t >= self._next_sample:
            self._sample_rows.append(len(self._pending))
            self._next_sample += self.settings.colour_sample_s
        self.times.append(t)
        self._pending.append(rgb)
        if len(self._head) < self.settings.motion_interval:
            self._head.append(rgb)
        if len(self._pending) >= BATCH:
            self._submit()

    def finish(self) -> "FrameStats":
        try:
            if self._pending:
                self._submit()
            for future in self._queued:
                future.result()
        finally:
            self._worker.shutdown(wait=True, cancel_futures=True)
        for name, chunks in self._chunks.items():
            setattr(self, name, np.concatenate(chunks) if chunks else np.zeros(0))
        return self

    def close(self) -> None:
        """Stop the worker without measuring what is pending (decoding failed)."""
        self._worker.shutdown(wait=True, cancel_futures=True)

    def __len__(self) -> int:
        return len(self.times)

    @classmethod
    def joined(cls, spans: list["FrameStats"]) -> "FrameStats":
        """Finished spans of one clip, in order, as one pass over it would have measured them: the first
        frames of each span are measured again against the last frames of the span before."""
        whole = cls(spans[0].settings)
        whole.close()
        whole.times = [t for span in spans for t in span.times]
        whole.samples = [sample for span in spans for sample in span.samples]
        for name in COLUMNS:
            setattr(whole, name, np.concatenate([getattr(span, name) for span in spans]))
        row = len(spans[0])
        for before, after in zip(spans, spans[1:]):
            for name, values in seam_measures(before._tail, after._head, whole.settings).items():
                getattr(whole, name)[row:row + len(values)] = values
            row += len(after)
        return whole

    def _submit(self) -> None:
        first = len(self.times) - len(self._pending)
        sample_times = [self.times[first + row] for row in self._sample_rows]
        job = (self._pending, first, self._sample_rows, sample_times)
        self._pending, self._sample_rows = [], []
        while self._queued and (self._queued[0].done() or len(self._queued) >= QUEUED_BATCHES):
            self._queued.pop(0).result()  # raises here what went wrong on the worker
        self._queued.append(self._worker.submit(self._measure, *job))

    def _measure(self, frames: list[np.ndarray], first: int, sample_rows: list[int], sample_times) -> None:
        s = self.settings
        batch = np.stack(frames)
        history = batch if self._tail is None else np.concatenate([self._tail, batch])
        histograms = joint_histograms(batch, s.hist_levels)
        earlier = histograms[:-1] if self._tail_histograms is None else np.concatenate(
            [self._tail_histograms, histograms[:-1]])
        step = histogram_step(histograms, earlier, first_frame=self._tail_histograms is None)
        pixels = batch.reshape(len(batch), -1, 3).astype(np.float32)  # (N, pixels, 3)
        ones = np.ones(pixels.shape[1], np.float32)  # sums over pixels as matrix products: numpy reduces a
        means = ones @ pixels / (len(ones) * 255.0)  # 3-long last axis slowly
        columns = {
            "histograms": histograms, "step": step,
            "pixel_change": mean_abs_difference(batch, frames_before(history, first, len(batch), 1)),
            "unexplained": unexplained_change(pixels, pixels[:1] if self._tail_pixels is None else self._tail_pixels),
            "motion": mean_abs_difference(batch, frames_before(history, first, len(batch), s.motion_interval)),
            "brightness": means @ np.array([0.299, 0.587, 0.114], np.float32),
            "saturation": mean_saturation(batch),
            "warmth": means[:, 0] - means[:, 2],
        }
        for name, values in columns.items():
            self._chunks[name].append(np.asarray(values))
        self.samples += [(t, log_chroma_histogram(batch[row], s.log_chroma_bins))
                         for row, t in zip(sample_rows, sample_times)]
        self._tail = history[-s.motion_interval:]
        self._tail_histograms = histograms[-1:]
        self._tail_pixels = pixels[-1:]


SEAM_COLUMNS = ("step", "pixel_change", "unexplained", "motion")  # the measures that look at earlier frames


def seam_measures(before: np.ndarray, after: list[np.ndarray], settings: AnalysisSettings) -> dict:
    """The SEAM_COLUMNS of the frames `after`, with the frames `before` (motion_interval of them, the last
    of the span before) as their history."""
    probe = FrameStats(settings)
    probe.close()
    probe._measure(list(before), 0, [], [])
    probe._measure(after, len(before), [], [])
    return {name: probe._chunks[name][-1] for name in SEAM_COLUMNS}


def histogram_step(histograms: np.ndarray, earlier: np.ndarray, first_frame: bool) -> np.ndarray:
    """Distance of each histogram from the one before (`earlier`: the previous frame's, row by row)."""
    if first_frame:
        return np.r_[0.0, half_l1(histograms[1:], earlier)].astype(np.float32)
    return half_l1(histograms, earlier)


def half_l1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    total = a.sum(axis=-1, dtype=np.int64)
    return (0.5 * np.abs(a.astype(np.int32) - b).sum(axis=-1) / np.maximum(total, 1)).astype(np.float32)


def mean_abs_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean |a - b| / 255 per frame of two (N, H, W, 3) uint8 stacks (max - min: no wider copy)."""
    diff = np.maximum(a, b)
    diff -= np.minimum(a, b)
    return (diff.reshape(len(a), -1).sum(axis=1, dtype=np.uint32) / (a[0].size * 255.0)).astype(np.float32)


def frames_before(history: np.ndarray, first: int, count: int, lag: int) -> np.ndarray:
    """The frame `lag` before each of the last `count` frames of `history` (`first`: the clip's index of the
    first of them); the clip's first `lag` frames take the frame just before them (the first: itself)."""
    start = len(history) - count - lag
    if first >= lag:
        return history[start:start + count]  # a view: no copy
    index = np.arange(count) + len(history) - count
    return history[np.where(first + np.arange(count) >= lag, index - lag, np.maximum(index - 1, 0))]


def unexplained_change(y: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """Per frame of the (N, pixels, 3) float32 stack `y`, each against the frame before it (`x0`, (1, pixels,
    3), before the first), sqrt(residual / change): the squared change that no per-channel gain-and-offset
    map of the frame before explains, over the whole squared change (0 when nothing changed).

    The sums of the frames before are the sums of y shifted by one row: only the cross products are new."""
    n = y.shape[1]
    ones = np.ones(n, np.float32)
    sum_y, sum_yy = ones @ y, ones @ (y * y)
    sum_x = np.concatenate([ones @ x0, sum_y[:-1]])
    sum_xx = np.concatenate([ones @ (x0 * x0), sum_yy[:-1]])
    sum_xy = np.concatenate([ones @ (x0 * y[:1]), ones @ (y[1:] * y[:-1])])
    mx, my = sum_x / n, sum_y / n
    sxx = sum_xx - n * mx * mx
    syy = sum_yy - n * my * my
    sxy = sum_xy - n * mx * my
    fitted = np.where(sxx > n * 0.25, sxy * sxy / np.maximum(sxx, 1e-6), 0.0)  # a flat `before`: offset only
    residual = np.maximum(syy - fitted, 0.0).sum(axis=1)
    change = (sxx + syy - 2 * sxy + n * (my - mx) ** 2).sum(axis=1)
    return np.sqrt(np.where(change > 0, residual / np.maximum(change, 1e-6), 0.0)).astype(np.float32)


@lru_cache(maxsize=4)
def dither(shape: tuple[int, int]) -> np.ndarray:
    """A fixed (H, W, 3) pattern of offsets 0..255, the same for every frame of a clip."""
    return np.random.default_rng(2026).integers(0, 256, (*shape, 3), dtype=np.uint16)


def joint_histograms(frames: np.ndarray, levels: int = 8) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, levels**3) uint16 pixel counts of a dithered joint RGB histogram.

    Each channel is quantised as floor(((levels - 1) * x + d) / 256) with a fixed random offset d per
    pixel: a pixel between two bin centres lands in either bin in proportion to its distance from
    them. A flat picture fading slowly then moves a little of its mass every frame instead of all of
    it at once when it crosses a bin edge.
    """
    q = frames.astype(np.uint16)
    q *= levels - 1
    q += dither(frames.shape[1:3])
    q >>= 8
    index = q[..., 0] * levels  # in place from here: these arrays are large next to the work on them
    index += q[..., 1]
    index *= levels
    index += q[..., 2]
    bins = levels ** 3
    out = np.empty((len(frames), bins), np.uint16 if index[0].size < 1 << 16 else np.uint32)
    for row, frame in zip(out, index.reshape(len(frames), -1)):
        row[:] = np.bincount(frame, minlength=bins)
    return out


def mean_saturation(frames: np.ndarray) -> np.ndarray:
    """Mean HSV saturation per frame, (max - min) / max per pixel; black pixels count as 0."""
    r, g, b = frames[..., 0], frames[..., 1], frames[..., 2]  # numpy reduces a 3-long last axis slowly
    high = np.maximum(np.maximum(r, g), b)
    spread = (high - np.minimum(np.minimum(r, g), b)).astype(np.float32)
    return (spread / np.maximum(high, 1).astype(np.float32)).mean(axis=(-2, -1))


def log_chroma_histogram(rgb: np.ndarray, bins: int = 16, extent: float = 3.0) -> np.ndarray:
    """HistoGAN's RGB-uv histogram: for each channel, log-ratios to the other two, intensity-weighted.

    Returns shape (3, bins, bins), summing to 1 (pixels whose ratios fall outside +-extent are left
    out). Near-black pixels carry little weight.
    """
    x = rgb.reshape(-1, 3).astype(np.float32)
    x *= 1 / 255.0
    x += 1e-3
    intensity = np.sqrt(np.einsum("ij,ij->i", x, x))
    log_x = np.log(x)
    scale = bins / (2 * extent)
    out = np.zeros(3 * bins * bins)
    for c in range(3):
        u = (log_x[:, c] - log_x[:, (c + 1) % 3] + extent) * scale
        v = (log_x[:, c] - log_x[:, (c + 2) % 3] + extent) * scale
        keep = (u >= 0) & (u <= bins) & (v >= 0) & (v <= bins)  # the top edge belongs to the last bin
        cell = np.minimum(u[keep].astype(np.intp), bins - 1) * bins + np.minimum(v[keep].astype(np.intp), bins - 1)
        out += np.bincount(c * bins * bins + cell, weights=intensity[keep], minlength=3 * bins * bins)
    out = out.reshape(3, bins, bins).astype(np.float32)
    total = out.sum()
    return out / total if total > 0 else out
