"""`analyze`: one decode of a clip into cuts, gradual transitions, motion, colour and tempo.

Results are plain dataclasses with `to_dict`/`from_dict`, cached in the user
cache directory under a key made of the content (size, mtime, a hash of a few
blocks), the range, the `AnalysisSettings` and a hash of the analysis code.
`to_dict()` leaves out the per-sample log-chroma histograms (the bulk of the
data) unless asked (`to_dict(with_chroma=True)`, `analyze --json --with-chroma`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import ClassVar, Optional

import numpy as np

from ..cores import core_count
from ..errors import CuesmithError
from ..files import write_json_atomic
from ..progress import Progress, report
from .cuts import Cut, GradualTransition, detect_cuts, detect_gradual
from .decode import (TRUNCATION_TOLERANCE_S, AudioInfo, VideoInfo, iter_frames, nearest_keyframe,
                     open_container, probe)
from .frames import FrameStats
from .settings import DEFAULT_SETTINGS, AnalysisSettings
from .tempo import TempoRange, suggest_tempo

ANALYSIS_VERSION = 2  # the format of the result; the cache key also holds the settings and a hash of the code


@dataclass
class Motion:
    times: list[float]
    energy: list[float]  # per frame, mean RGB difference over MOTION_INTERVAL frames, 0..1
    smooth: list[float]  # moving average over SMOOTH_S, with the jumps at cuts removed
    mean: float


@dataclass
class Colour:
    times: list[float]  # sample times
    brightness: list[float]
    saturation: list[float]
    warmth: list[float]
    mean_brightness: float
    mean_saturation: float
    mean_warmth: float
    # per sample, the (3, 16, 16) HistoGAN histogram, flattened; [] when read from a dict without them
    log_chroma: list[list[float]] = field(default_factory=list)


@dataclass
class VideoAnalysis:
    info: VideoInfo
    start: float  # the clip range analysed, in seconds of the file
    end: float
    duration: float
    frame_count: int
    fps: float  # frames per second actually decoded
    variable_frame_rate: bool
    cuts: list[Cut]
    transitions: list[GradualTransition]
    motion: Motion
    colour: Colour
    tempo: TempoRange
    version: int = ANALYSIS_VERSION
    chroma_in_dict: ClassVar[bool] = False  # to_dict's default for with_chroma; see including_chroma()

    def to_dict(self, with_chroma: Optional[bool] = None) -> dict:
        """Plain data; the log-chroma histograms only `with_chroma` (about 3 KB per half second)."""
        d = plain(self)
        if not (self.chroma_in_dict if with_chroma is None else with_chroma):
            del d["colour"]["log_chroma"]
        return d

    def including_chroma(self) -> "VideoAnalysis":
        """This analysis, with the log-chroma histograms in its to_dict() (`analyze --with-chroma`)."""
        copy = replace(self)
        copy.chroma_in_dict = True
        return copy

    @classmethod
    def from_dict(cls, d: dict) -> "VideoAnalysis":
        info = dict(d["info"])
        info["audio"] = AudioInfo(**info["audio"]) if info.get("audio") else None
        return cls(
            info=VideoInfo(**info), start=d["start"], end=d["end"], duration=d["duration"],
            frame_count=d["frame_count"], fps=d["fps"], variable_frame_rate=d["variable_frame_rate"],
            cuts=[Cut(**c) for c in d["cuts"]],
            transitions=[GradualTransition(**t) for t in d["transitions"]],
            motion=Motion(**d["motion"]), colour=Colour(**d["colour"]), tempo=TempoRange(**d["tempo"]),
            version=d["version"])

    def summary(self) -> str:
        i = self.info
        audio = (f"{i.audio.codec} {i.audio.sample_rate} Hz {i.audio.channels} ch"
                 if i.audio else "none")
        rate = f"{self.fps:.2f} fps" + (" (variable)" if self.variable_frame_rate else "")
        lines = [
            f"{Path(i.path).name}: {self.duration:.2f} s, {i.width}x{i.height}"
            + (f" (rotated {i.rotation}°)" if i.rotation else "") + f", {rate}, {i.codec}, audio {audio}",
            f"cuts ({len(self.cuts)}): " + (", ".join(f"{c.time:.2f}" for c in self.cuts) or "none"),
            f"gradual transitions ({len(self.transitions)}): "
            + (", ".join(f"{t.kind} {t.start:.2f}-{t.end:.2f}" for t in self.transitions) or "none"),
            f"motion: mean {self.motion.mean:.3f}; colour: brightness {self.colour.mean_brightness:.2f}, "
            f"saturation {self.colour.mean_saturation:.2f}, warmth {self.colour.mean_warmth:+.2f}",
            f"tempo suggestion: {self.tempo.bpm:.0f} BPM (range {self.tempo.low:.0f}-{self.tempo.high:.0f})",
        ]
        return "\n".join(lines)


def plain(value):
    """dataclasses.asdict for these results, ~5x faster: the long float lists are copied as lists, not
    element by element (a 10-minute clip holds ~10^6 numbers)."""
    if is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list):
        if value and (is_dataclass(value[0]) or isinstance(value[0], (list, dict))):
            return [plain(v) for v in value]
        return list(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def check_range(path: Path, start: Optional[float], end: Optional[float]) -> tuple[float, Optional[float]]:
    start = 0.0 if start is None else float(start)
    if start < 0:
        raise CuesmithError(f"--start {start} is negative", path)
    if end is not None and end <= start:
        raise CuesmithError(f"--end {end} is not after --start {start}", path)
    return start, end


def analyze(video: str | Path, start: Optional[float] = None, end: Optional[float] = None,
            progress: Optional[Progress] = None, settings: AnalysisSettings = DEFAULT_SETTINGS) -> VideoAnalysis:
    path = Path(video)
    start, end = check_range(path, start, end)
    container = open_container(path)
    try:
        info = probe(container, path)
        bounds = span_bounds(container, info, start, end)
    finally:
        container.close()
    stats = decode_in_spans(path, info, bounds, start, progress, settings) if len(bounds) > 2 else None
    if stats is None:
        stats = decode_in_one_pass(path, info, start, end, progress, settings)
    check_frames(path, info, stats, start, end)
    report(progress, "analyse", 1.0)
    return measure(info, stats, start, end, settings)


def decode_in_one_pass(path, info, start, end, progress, settings) -> FrameStats:
    container = open_container(path)
    stats = FrameStats(settings)
    try:
        decode_stats(container, path, info, start, end, progress, stats)
        stats.finish()
    finally:
        stats.close()
        container.close()
    return stats


def decode_stats(container, path, info, start, end, progress, stats: FrameStats, origin: Optional[float] = None,
                 threads: Optional[str] = None, stop: Optional[threading.Event] = None) -> None:
    """Decode [start, end) into `stats`, times relative to `origin` (default: start)."""
    origin = start if origin is None else origin
    until = end if end is not None else info.declared_duration
    span = max(1e-6, (until or 0.0) - start)
    s = stats.settings
    for t, rgb, rotation in iter_frames(container, path, start, end, s.analysis_width, s.fast_decode, threads):
        if stop is not None and stop.is_set():
            return
        if not len(stats) and start == origin:  # the clip's first frame
            info.rotation = rotation or info.rotation
            if info.rotation % 180 == 90 and info.width == info.coded_width:
                info.width, info.height = info.coded_height, info.coded_width
        stats.add(t - origin, rgb)
        if len(stats) % 30 == 0 and until:
            report(progress, "analyse", (t - start) / span)


# -- spans: the clip cut at keyframes, each span decoded on its own core ------------------------------
# Decoding is most of the analysis and FFmpeg's frame threads cost a fifth more CPU in synchronisation
# (bench_video); spans that start on keyframes decode independently, with no synchronisation at all.
ANALYSIS_SPANS: Optional[int] = None  # None: one span a core, up to MAX_SPANS; results do not depend on it
MAX_SPANS = 4
MIN_SPAN_S = 10.0  # a shorter span is not worth its own decoder (opening the file, measuring a seam again)
PROGRESS_EVERY_S = 0.25  # spans report their progress together, from the calling thread


def span_bounds(container, info: VideoInfo, start: float, end: Optional[float]) -> list[float]:
    """[start, keyframe, ..., stop]: the range cut at the keyframes nearest equal shares; [] for one span."""
    until = end if end is not None else info.declared_duration
    if not until or until <= start:
        return []
    count = min(ANALYSIS_SPANS or min(MAX_SPANS, core_count()), int((until - start) // MIN_SPAN_S))
    bounds = [start]
    for k in range(1, count):
        key = nearest_keyframe(container, start + (until - start) * k / count)
        if key is None:
            return []
        if bounds[-1] + MIN_SPAN_S / 2 < key < until - MIN_SPAN_S / 2:
            bounds.append(key)
    return bounds + [end] if len(bounds) > 1 else []


def decode_in_spans(path, info, bounds: list, origin: float, progress,
                    settings) -> Optional[FrameStats]:
    """The spans [bounds[k], bounds[k+1]) decoded in parallel threads (PyAV and numpy release the GIL) and
    joined; None when the spans do not join up (a frame missing at a seam): decode in one pass then."""
    spans = [FrameStats(settings, first_sample=colour_sample_after(b - origin, settings)) for b in bounds[:-1]]
    stop = threading.Event()

    def decode(k: int) -> None:
        container = open_container(path)
        try:
            decode_stats(container, path, info, bounds[k], bounds[k + 1], None, spans[k], origin, "SLICE", stop)
            spans[k].finish()
        except BaseException:
            stop.set()
            raise
        finally:
            spans[k].close()
            container.close()

    expected = max(1.0, ((bounds[-1] or info.declared_duration or 0.0) - origin) * (info.nominal_fps or 30.0))
    with ThreadPoolExecutor(max_workers=len(spans), thread_name_prefix="analysis-span") as pool:
        jobs = [pool.submit(decode, k) for k in range(len(spans))]
        try:
            while wait(jobs, timeout=PROGRESS_EVERY_S)[1]:
                report(progress, "analyse", sum(len(span) for span in spans) / expected)
        finally:
            stop.set()  # an interrupt here stops the decoders too; after a normal end it changes nothing
        for job in jobs:
            job.result()
    return FrameStats.joined(spans) if spans_join(spans) else None


def colour_sample_after(t: float, s: AnalysisSettings) -> float:
    return math.ceil(t / s.colour_sample_s - 1e-9) * s.colour_sample_s


def spans_join(spans: list[FrameStats]) -> bool:
    """Every span holds a seam's worth of frames and the next starts one frame interval after it ends."""
    if any(len(span) <= span.settings.motion_interval for span in spans):
        return False
    for before, after in zip(spans, spans[1:]):
        interval = float(np.median(np.diff(before.times)))
        if not 0 < after.times[0] - before.times[-1] < 1.5 * interval:
            return False
    return True


def check_frames(path: Path, info: VideoInfo, stats: FrameStats, start: float, end: Optional[float]) -> None:
    if not len(stats):
        where = "in the requested range" if start > 0 or end is not None else ""
        raise CuesmithError(f"contains no video frames {where}".strip(), path)
    declared = info.declared_duration
    if declared and end is None and declared - (start + stats.times[-1]) > max(
            TRUNCATION_TOLERANCE_S, 0.1 * declared):
        raise CuesmithError(f"is truncated: video frames stop at {start + stats.times[-1]:.2f} s "
                            f"but the file declares {declared:.2f} s", path)


def measure(info, stats: FrameStats, start: float, end: Optional[float], s: AnalysisSettings) -> VideoAnalysis:
    times = np.asarray(stats.times)
    cuts = detect_cuts(times, stats.histograms, stats.step, stats.pixel_change, stats.unexplained, s)
    transitions = detect_gradual(times, stats.histograms, stats.step, stats.brightness, cuts, s)
    intervals = np.diff(times)
    span = float(times[-1] - times[0])
    fps = (len(times) - 1) / span if span > 0 else (info.nominal_fps or 30.0)
    duration = float(times[-1] + 1.0 / fps)
    vfr = bool(len(intervals) > 2 and (intervals.max() - intervals.min()) > 0.1 * np.median(intervals))
    motion = motion_curve(times, stats.motion, cuts, fps, s)
    colour = colour_summary(stats)
    return VideoAnalysis(info, start, start + duration if end is None else min(end, start + duration),
                         round(duration, 6), len(times), round(fps, 4), vfr, cuts, transitions, motion,
                         colour, suggest_tempo(np.asarray(motion.smooth)))


def motion_curve(times: np.ndarray, energy: np.ndarray, cuts: list[Cut], fps: float,
                 s: AnalysisSettings) -> Motion:
    clean = energy.astype(np.float64)
    for cut in cuts:  # differences that straddle a cut measure the cut, not motion
        clean[cut.frame:cut.frame + s.motion_interval] = np.nan
    valid = ~np.isnan(clean)
    if valid.any():
        clean = np.interp(np.arange(len(clean)), np.flatnonzero(valid), clean[valid])
    else:
        clean = np.zeros_like(clean)
    width = max(1, int(round(s.smooth_s * fps)))
    padded = np.pad(clean, (width // 2, width - 1 - width // 2), mode="edge")
    smooth = np.convolve(padded, np.ones(width) / width, mode="valid")
    return Motion(rounded(times), rounded(energy), rounded(smooth), round(float(clean.mean()), 5))


def colour_summary(stats: FrameStats) -> Colour:
    samples = stats.samples
    times = np.asarray(stats.times)
    index = [int(np.searchsorted(times, t)) for t, _ in samples]
    pick = lambda values: rounded(values[index])  # noqa: E731
    return Colour(
        times=rounded([t for t, _ in samples]),
        brightness=pick(stats.brightness), saturation=pick(stats.saturation), warmth=pick(stats.warmth),
        log_chroma=[rounded(h.ravel()) for _, h in samples],
        mean_brightness=round(float(np.mean(stats.brightness)), 4),
        mean_saturation=round(float(np.mean(stats.saturation)), 4),
        mean_warmth=round(float(np.mean(stats.warmth)), 4))


def rounded(values, digits: int = 5) -> list[float]:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


# -- cache --------------------------------------------------------------------
def cache_dir() -> Path:
    override = os.environ.get("CUESMITH_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("cuesmith"))


def content_key(path: Path, start: Optional[float], end: Optional[float],
                settings: AnalysisSettings = DEFAULT_SETTINGS) -> str:
    """Size, mtime and three 64 KiB blocks (head, middle, tail): cheap and changes with the content;
    with the range, the settings and the analysis code's hash (settings.key())."""
    stat = path.stat()
    digest = hashlib.sha256(f"{ANALYSIS_VERSION}|{settings.key()}|{stat.st_size}|{stat.st_mtime_ns}|"
                            f"{start}|{end}".encode())
    block = 1 << 16
    with path.open("rb") as f:
        for offset in (0, max(0, stat.st_size // 2 - block // 2), max(0, stat.st_size - block)):
            f.seek(offset)
            digest.update(f.read(block))
    return digest.hexdigest()[:32]


def analyze_cached(video: str | Path, start: Optional[float] = None, end: Optional[float] = None,
                   progress: Optional[Progress] = None, cache_dir: Optional[Path] = None,
                   use_cache: bool = True, settings: AnalysisSettings = DEFAULT_SETTINGS) -> VideoAnalysis:
    path = Path(video)
    if not use_cache:
        return analyze(path, start, end, progress, settings)
    from .decode import check_path

    check_path(path)
    entry = (cache_dir or globals()["cache_dir"]()) / "analysis" / f"{content_key(path, start, end, settings)}.json"
    if entry.exists():
        try:
            cached = VideoAnalysis.from_dict(json.loads(entry.read_text()))
            if cached.version == ANALYSIS_VERSION:
                cached.info.path = str(path)
                return cached
        except (ValueError, KeyError, TypeError):
            pass  # a damaged or old entry: analyse again and replace it
    result = analyze(path, start, end, progress, settings)
    write_json_atomic(entry, result.to_dict(with_chroma=True), indent=None)  # read by machines: compact
    return result
