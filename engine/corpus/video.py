"""Paired video for a rendered excerpt, made from the music's own structure.

The picture follows the music by construction, so a model trained on the pairs
can learn these links and only these:
- cuts: at every phrase start inside the excerpt (POP909 structure labels) and
  on downbeats between them, every `VideoConfig.bars_per_shot` bars (the
  seeded choice of 1, 2 or 4 per excerpt), never closer than `min_shot_s`;
- motion: each shot is a procedural texture (sine gratings and soft blobs, seeded
  per shot) panned and zoomed at a speed that follows the onset density
  (spectral flux) of the audio under it, frame by frame, smoothed over ~0.3 s;
- brightness follows the loudness (RMS in dB) of the audio, smoothed over 1 s;
- colour: hue from the mode (major warm, minor cool; each shot turns the hue
  away from the last one so cuts stay visible), saturation and lightness of the
  palette from the register (spectral centroid of the shot's audio);
- fades: a fade from black where the excerpt starts quietly and to black where
  it ends quietly (RMS under `quiet_dbfs`).

What it cannot teach: meaning (no objects, people, places, stories), camera
grammar beyond hard cuts and fades (no dissolves, no match cuts), any link
between lyrics or genre and picture, off-beat cuts (every cut is on a downbeat:
a model can over-learn that), or what real footage's motion looks like (flow of
textures, not of things). The same (excerpt, seed) gives the same video.
"""
from __future__ import annotations

import colorsys
import fractions
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..files import atomic_path, write_json_atomic
from ..progress import Progress, report
from .audio import Excerpt

HUE_MAJOR = (0.0, 0.17)  # reds to yellows
HUE_MINOR = (0.5, 0.75)  # cyans to violets


@dataclass(frozen=True)
class VideoConfig:
    fps: int = 25
    size: tuple[int, int] = (320, 180)
    min_shot_s: float = 1.5
    quiet_dbfs: float = -45.0  # RMS under this at an end of the excerpt: fade there
    fade_s: float = 0.8
    max_speed: float = 0.35  # texture pan in frame widths per second at the densest onsets
    smooth_s: float = 0.3  # onset density -> speed
    brightness_smooth_s: float = 1.0  # loudness -> brightness: slower, or a loud entry reads as a cut
    seed: int = 15


@dataclass
class ShotPlan:
    start: float
    end: float
    hue: float
    saturation: float
    lightness: float
    texture_seed: int


@dataclass
class VideoPlan:
    excerpt: str
    fps: int
    size: tuple[int, int]
    seconds: float
    cuts: list[float]  # planned cut times in seconds (each on the first frame at or after it)
    shots: list[ShotPlan]
    fade_in: bool
    fade_out: bool
    speed: list[float] = field(repr=False, default_factory=list)  # per frame, frame widths per second
    brightness: list[float] = field(repr=False, default_factory=list)  # per frame gain, 0..1
    seed: int = 0

    def cut_frames(self) -> list[int]:
        return [int(np.ceil(t * self.fps - 1e-6)) for t in self.cuts]


# -- planning -------------------------------------------------------------------

def plan_cuts(excerpt: Excerpt, config: VideoConfig, rng: random.Random) -> list[float]:
    """Phrase starts, then every n-th downbeat between them, at least `min_shot_s` apart."""
    bars_per_shot = rng.choice((1, 2, 4))
    downbeats = [t for t, down in excerpt.beats if down]
    phrases = {round(t, 3) for t, _ in excerpt.phrases}
    candidates = sorted({round(t, 3) for t in downbeats[::bars_per_shot]} | phrases)
    end = excerpt.seconds - config.min_shot_s
    cuts: list[float] = []
    for t in candidates:
        if t < config.min_shot_s or t > end:
            continue
        if cuts and t - cuts[-1] < config.min_shot_s:
            if t in phrases and cuts[-1] not in phrases:
                cuts[-1] = t  # a phrase start wins over a plain downbeat
            continue
        cuts.append(t)
    frame = 1.0 / config.fps  # a cut must land on its own frame
    return [t for i, t in enumerate(cuts) if i == 0 or t - cuts[i - 1] > frame]


def audio_curves(samples: np.ndarray, sample_rate: int, fps: int, frames: int,
                 smooth_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per video frame: RMS in dBFS, onset density (spectral flux, 0..1), spectral centroid (Hz)."""
    hop = sample_rate / fps
    window = 2048
    padded = np.pad(samples, (window // 2, window))
    starts = (np.arange(frames) * hop).astype(int)
    blocks = np.stack([padded[s:s + window] for s in starts]) * np.hanning(window)
    spectrum = np.abs(np.fft.rfft(blocks, axis=1))
    rms = 20 * np.log10(np.sqrt(np.mean(blocks ** 2, axis=1)) * 2 + 1e-9)
    log_spec = np.log1p(100 * spectrum)
    flux = np.maximum(np.diff(log_spec, axis=0, prepend=log_spec[:1]), 0).mean(axis=1)
    freqs = np.fft.rfftfreq(window, 1 / sample_rate)
    centroid = (spectrum * freqs).sum(axis=1) / (spectrum.sum(axis=1) + 1e-9)
    smooth = lambda x: _smooth(x, max(1, int(round(smooth_s * fps))))  # noqa: E731
    density = smooth(flux)
    density = density / (np.percentile(density, 95) + 1e-9)
    return smooth(rms), np.clip(density, 0, 1), centroid


def _smooth(values: np.ndarray, width: int) -> np.ndarray:
    padded = np.pad(values, (width // 2, width - 1 - width // 2), mode="edge")
    return np.convolve(padded, np.ones(width) / width, mode="valid")


def plan_video(excerpt: Excerpt, samples: np.ndarray, config: VideoConfig = VideoConfig()) -> VideoPlan:
    rng = random.Random(f"{config.seed}/{excerpt.id}")
    frames = int(np.floor(excerpt.seconds * config.fps))
    rms, density, centroid = audio_curves(samples, excerpt.sample_rate, config.fps, frames, config.smooth_s)
    cuts = plan_cuts(excerpt, config, rng)
    bounds = [0.0, *cuts, excerpt.seconds]
    minor = bool(excerpt.key and excerpt.key.get("mode") == "minor")
    low, high = HUE_MINOR if minor else HUE_MAJOR
    shots, phase = [], rng.random()
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        inside = slice(int(a * config.fps), max(int(a * config.fps) + 1, int(b * config.fps)))
        register = float(np.clip((np.log2(np.median(centroid[inside]) + 1) - 9) / 3, 0, 1))  # ~500 Hz .. 4 kHz
        hue = low + (high - low) * ((phase + 0.618 * k) % 1.0)  # golden-ratio steps: neighbours differ
        contrast = 0.12 if k % 2 else -0.12  # and alternate darker/lighter, so every cut shows
        shots.append(ShotPlan(round(a, 4), round(b, 4), round(hue, 4), round(0.45 + 0.4 * register, 4),
                              round(0.35 + 0.3 * register + contrast, 4), rng.randrange(1 << 30)))
    loud = np.clip((_smooth(rms, int(config.brightness_smooth_s * config.fps)) - config.quiet_dbfs) / 30.0, 0, 1)
    ends = int(config.fade_s * config.fps)
    return VideoPlan(
        excerpt=excerpt.id, fps=config.fps, size=tuple(config.size), seconds=excerpt.seconds, cuts=cuts,
        shots=shots, fade_in=bool(rms[:ends].mean() < config.quiet_dbfs),
        fade_out=bool(rms[-ends:].mean() < config.quiet_dbfs),
        speed=[round(float(v), 4) for v in config.max_speed * (0.1 + 0.9 * density)],
        brightness=[round(float(v), 4) for v in 0.65 + 0.35 * loud], seed=config.seed)


# -- drawing --------------------------------------------------------------------

def shot_texture(shot: ShotPlan, width: int, height: int) -> np.ndarray:
    """A (2h, 2w, 3) float32 RGB texture in 0..1, periodic in (h, w) and tiled twice each way,
    so that any crop at an offset in [0, h) x [0, w) is seamless: gratings and soft blobs."""
    rng = np.random.default_rng(shot.texture_seed)
    h, w = height, width
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    field_ = np.zeros((h, w), np.float32)
    for _ in range(3):  # whole cycles across the frame, so the tiling has no seam
        kx, ky = rng.integers(1, 4), rng.integers(-2, 3)
        field_ += np.sin(2 * np.pi * (kx * x / w + ky * y / h) + rng.uniform(0, 2 * np.pi))
    for _ in range(5):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.08, 0.2) * h
        dx = np.minimum(np.abs(x - cx), w - np.abs(x - cx))
        dy = np.minimum(np.abs(y - cy), h - np.abs(y - cy))
        field_ += 2.0 * np.exp(-(dx ** 2 + dy ** 2) / (2 * r ** 2))
    field_ = (field_ - field_.min()) / (np.ptp(field_) + 1e-6)
    dark = np.array(colorsys.hls_to_rgb(shot.hue, shot.lightness * 0.5, shot.saturation), np.float32)
    light = np.array(colorsys.hls_to_rgb((shot.hue + 0.08) % 1, min(0.9, shot.lightness * 1.6),
                                         shot.saturation), np.float32)
    return np.tile(dark + field_[..., None] * (light - dark), (2, 2, 1))


def draw_frames(plan: VideoPlan):
    """Yield (time, RGB uint8 frame) for every frame of the plan."""
    width, height = plan.size
    cut_frames = [0, *plan.cut_frames(), 1 << 30]
    texture, position, fade = None, np.zeros(2), int(0.8 * plan.fps)
    total = len(plan.speed)
    for i in range(total):
        k = int(np.searchsorted(cut_frames, i, side="right")) - 1
        if i == cut_frames[k]:
            shot = plan.shots[k]
            texture = shot_texture(shot, width, height)
            direction = np.array([np.cos(shot.texture_seed), np.sin(shot.texture_seed)])
            position = np.array([shot.texture_seed % width, shot.texture_seed % height], np.float64)
        position += direction * plan.speed[i] * width / plan.fps
        y0, x0 = int(position[1]) % height, int(position[0]) % width
        gain = plan.brightness[i]
        if plan.fade_in and i < fade:
            gain *= i / fade
        if plan.fade_out and i >= total - fade:
            gain *= (total - 1 - i) / fade
        image = texture[y0:y0 + height, x0:x0 + width] * (255 * gain)
        yield i / plan.fps, image.astype(np.uint8)


def write_video(plan: VideoPlan, path: Path, samples: Optional[np.ndarray] = None, sample_rate: int = 32_000,
                progress: Optional[Progress] = None) -> Path:
    """The plan as H.264 (and the excerpt's audio as AAC when given), written atomically."""
    import av

    width, height = plan.size
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=plan.fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"preset": "veryfast", "crf": "23", "g": str(4 * plan.fps)}
            audio = container.add_stream("aac", rate=sample_rate, layout="mono") if samples is not None else None
            for i, (_, image) in enumerate(draw_frames(plan)):
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = i
                frame.time_base = fractions.Fraction(1, plan.fps)
                container.mux(stream.encode(frame))
                if i % plan.fps == 0:
                    report(progress, "paired video", i / max(1, len(plan.speed)))
            container.mux(stream.encode(None))
            if audio is not None:
                _write_audio(container, audio, samples, sample_rate)
    return path


def _write_audio(container, stream, samples: np.ndarray, sample_rate: int) -> None:
    import av

    chunk = 1024
    for start in range(0, len(samples), chunk):
        piece = np.ascontiguousarray(samples[start:start + chunk], np.float32)[None, :]
        frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
        frame.sample_rate, frame.pts = sample_rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def build_paired(excerpt: Excerpt, config: VideoConfig = VideoConfig(),
                 progress: Optional[Progress] = None) -> tuple[Path, VideoPlan]:
    """`<id>.mp4` (video + the excerpt's audio) and `<id>.video.json` (the plan) beside the audio."""
    folder = Path(excerpt.audio_path).parent
    samples = excerpt.audio()
    plan = plan_video(excerpt, samples, config)
    video = folder / f"{excerpt.id}.mp4"
    write_video(plan, video, samples, excerpt.sample_rate, progress)
    record = asdict(plan)
    record.update(config=asdict(config))
    write_json_atomic(folder / f"{excerpt.id}.video.json", record)
    return video, plan
