"""Synthetic media with known ground truth, for the tests, the demo and the benchmarks.

Each video is a list of shots; a shot is a colour mood (background gradient,
or one flat colour) with shapes moving at a chosen speed. Between shots: a
hard cut, a fade through black or white, or a dissolve; the clip may open
with a fade in and close with a fade out. Any container/codec PyAV can
write, odd sizes, variable frame rate, rotation metadata and an optional
audio track.

    python tests/media.py demo out/demo/demo.mp4
"""
from __future__ import annotations

import argparse
import fractions
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

MOODS = {  # (top colour, bottom colour, shape colour), RGB
    "warm": ((250, 170, 60), (160, 40, 20), (255, 240, 200)),
    "cold": ((40, 90, 200), (10, 20, 70), (180, 230, 255)),
    "forest": ((60, 150, 70), (10, 50, 20), (230, 220, 90)),
    "dusk": ((150, 60, 150), (30, 10, 60), (255, 140, 90)),
    "grey": ((150, 150, 150), (60, 60, 60), (240, 240, 240)),
    "neon": ((240, 30, 140), (20, 220, 200), (255, 255, 40)),
    "flat-grey": ((128, 128, 128), (128, 128, 128), (128, 128, 128)),  # with shapes=0: one flat colour
    "flat-white": ((255, 255, 255), (255, 255, 255), (255, 255, 255)),
    "near-flat": ((118, 122, 126), (112, 116, 120), (122, 126, 130)),  # a grey wall: a few levels of texture
}
BLANKS = {"black": 0.0, "white": 255.0}
CODECS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".ts": "libx264", ".webm": "libvpx-vp9"}


@dataclass
class Shot:
    duration: float
    mood: str = "warm"
    speed: float = 0.3  # shape speed in frame widths per second
    shapes: int = 3


@dataclass
class Transition:
    """How a shot ends: a hard 'cut', a 'fade' through black (or white: via="white"), or a 'dissolve'.

    As a clip's `opening` (kind "fade_in") or `closing` ("fade_out"): a fade from or to `via`.
    """

    kind: str = "cut"
    duration: float = 0.0
    via: str = "black"


@dataclass
class Truth:
    """What the generator put in the file; times in seconds of presentation time."""

    path: Path
    frame_times: list[float]
    cuts: list[float] = field(default_factory=list)
    gradual: list[tuple[float, float, str]] = field(default_factory=list)
    width: int = 0
    height: int = 0
    has_audio: bool = False

    def cut_frames(self) -> list[int]:
        times = np.asarray(self.frame_times)
        return [int(np.searchsorted(times, t - 1e-6)) for t in self.cuts]

    @property
    def duration(self) -> float:
        return self.frame_times[-1] if self.frame_times else 0.0


@functools.lru_cache(maxsize=16)
def background(mood: str, width: int, height: int) -> np.ndarray:
    top, bottom, _ = (np.array(c, dtype=np.float32) for c in MOODS[mood])
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    gradient = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (height, width, 3))
    return np.ascontiguousarray(gradient.astype(np.uint8))


def shot_frame(shot: Shot, index: int, t: float, width: int, height: int) -> np.ndarray:
    image = background(shot.mood, width, height).copy()
    ink = np.array(MOODS[shot.mood][2], dtype=np.float32)  # shapes drawn in place on a uint8 copy
    rng = np.random.default_rng(index * 7919 + 17)
    for s in range(shot.shapes):
        radius = height * rng.uniform(0.06, 0.14)
        phase, lane = rng.uniform(0, 1), rng.uniform(0.2, 0.8)
        cx = ((phase + shot.speed * t * (1 + 0.3 * s)) % 1.0) * width
        cy = lane * height + 0.1 * height * np.sin(2 * np.pi * (t * 0.5 + s / 3))
        x0, x1 = int(max(0, cx - radius)), int(min(width, cx + radius + 1))
        y0, y1 = int(max(0, cy - radius)), int(min(height, cy + radius + 1))
        yy, xx = np.ogrid[y0:y1, x0:x1]
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < radius ** 2
        image[y0:y1, x0:x1][mask] = (ink * (0.7 + 0.3 * s / max(1, shot.shapes - 1))).astype(np.uint8)
    return image


def frame_times_for(duration: float, fps: float, vfr: bool) -> list[float]:
    if not vfr:
        return [i / fps for i in range(int(round(duration * fps)))]
    times, t, i = [], 0.0, 0
    while t < duration - 1e-9:  # alternate between fps and 0.6*fps every second: a phone's VFR
        times.append(round(t, 3))
        rate = fps if int(t) % 2 == 0 else fps * 0.6
        t += 1.0 / rate
        i += 1
    return times


def blend(image: np.ndarray, via: str, weight: float) -> np.ndarray:
    """`image` faded towards black or white; weight 1 keeps the picture, 0 is all `via`."""
    return image * weight + BLANKS[via] * (1 - weight)


def render_frames(shots: list[Shot], transitions: list[Transition], times: list[float],
                  width: int, height: int, opening: Transition | None = None,
                  closing: Transition | None = None):
    """Yield (time, RGB uint8 frame) and fill the ground truth for cuts and gradual transitions."""
    starts = np.concatenate([[0.0], np.cumsum([s.duration for s in shots])])
    total = float(starts[-1])
    cuts, gradual = [], []
    if opening is not None:
        gradual.append((0.0, opening.duration, "fade_in"))
    for k, tr in enumerate(transitions):
        boundary = starts[k + 1]
        if tr.kind == "cut":
            cuts.append(float(boundary))
        else:
            gradual.append((float(boundary - tr.duration / 2), float(boundary + tr.duration / 2), tr.kind))
    if closing is not None:
        gradual.append((total - closing.duration, total, "fade_out"))

    def picture(k: int, t: float) -> np.ndarray:
        return shot_frame(shots[k], k, t - starts[k], width, height)

    def frames():
        for t in times:
            k = min(int(np.searchsorted(starts, t, side="right")) - 1, len(shots) - 1)
            image = picture(k, t)
            for j, tr in enumerate(transitions):
                if tr.kind == "cut" or abs(t - starts[j + 1]) >= tr.duration / 2:
                    continue
                # inside a gradual transition centred on the boundary between shots j and j+1
                alpha = (t - (starts[j + 1] - tr.duration / 2)) / tr.duration
                if tr.kind == "dissolve":
                    image = (1 - alpha) * picture(j, t) + alpha * picture(j + 1, t)
                else:  # fade through black or white
                    image = blend(image, tr.via, abs(1 - 2 * alpha))
            if opening is not None and t < opening.duration:
                image = blend(image, opening.via, t / opening.duration)
            if closing is not None and t > total - closing.duration:
                image = blend(image, closing.via, (total - t) / closing.duration)
            yield t, np.clip(image, 0, 255).astype(np.uint8) if image.dtype != np.uint8 else image

    return frames(), cuts, gradual


def make_video(path: str | Path, shots: list[Shot], transitions: list[Transition] | None = None,
               fps: float = 30.0, size: tuple[int, int] = (320, 180), vfr: bool = False,
               audio: bool = False, rotation: int = 0, crf: int = 23, opening: Transition | None = None,
               closing: Transition | None = None, encoder_options: dict | None = None) -> Truth:
    """Write a video of `shots` joined by `transitions` (hard cuts by default), optionally opening with a
    fade in and closing with a fade out, and return its truth. `encoder_options` go to the encoder after
    the defaults (x264: {"g": "30"} for a keyframe a second at 30 fps, {"bframes": "3"}, ...)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    transitions = transitions or [Transition("cut") for _ in shots[1:]]
    assert len(transitions) == len(shots) - 1
    width, height = size
    times = frame_times_for(sum(s.duration for s in shots), fps, vfr)
    frames, cuts, gradual = render_frames(shots, transitions, times, width, height, opening, closing)

    codec = CODECS[path.suffix.lower()]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=int(round(fps)))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = fractions.Fraction(1, 1000)
        stream.time_base = fractions.Fraction(1, 1000)
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": str(crf)}
        else:
            stream.options = {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0"}
        stream.options = {**stream.options, **(encoder_options or {})}
        if rotation:
            stream.set_display_rotation(rotation)
        audio_stream = container.add_stream("aac" if codec == "libx264" else "libopus", rate=48000, layout="stereo") if audio else None
        for t, image in frames:
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = int(round(t * 1000)), fractions.Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio_stream is not None:
            write_tone(container, audio_stream, times[-1] + 1 / fps)
    return Truth(path, times, cuts, gradual, width, height, audio)


def write_tone(container, stream, duration: float, freq: float = 220.0) -> None:
    rate, chunk = 48000, 960
    total = int(duration * rate)
    for start in range(0, total, chunk):
        n = min(chunk, total - start)
        t = (start + np.arange(n)) / rate
        wave = (0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]).reshape(1, -1), format="flt", layout="stereo")
        frame.sample_rate, frame.pts = rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def write_audio_only(path: str | Path, duration: float = 2.0) -> Path:
    path = Path(path)
    with av.open(str(path), "w") as container:
        write_tone(container, container.add_stream("aac", rate=48000, layout="stereo"), duration)
    return path


def write_zero_frame_video(path: str | Path) -> Path:
    """A container with a video stream and no frames in it (AVI keeps an empty stream; MP4 drops it)."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        container.start_encoding()  # writes the header although no frame follows
    return path


def demo_shots() -> tuple[list[Shot], list[Transition]]:
    """The 24 s demo clip: calm, faster, a fade, a dissolve, a fast finale."""
    shots = [Shot(4.0, "cold", 0.1), Shot(3.5, "forest", 0.25), Shot(4.5, "dusk", 0.2),
             Shot(4.0, "warm", 0.45), Shot(3.0, "grey", 0.3), Shot(5.0, "neon", 0.8, shapes=5)]
    transitions = [Transition("cut"), Transition("fade", 1.0), Transition("cut"),
                   Transition("dissolve", 1.2), Transition("cut")]
    return shots, transitions


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["demo"])
    parser.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    shots, transitions = demo_shots()
    truth = make_video(args.path, shots, transitions, fps=30, size=(1280, 720), audio=True)
    print(f"wrote {truth.path}: {truth.duration:.1f} s, cuts at {truth.cuts}, "
          f"gradual {[(round(a, 2), round(b, 2), k) for a, b, k in truth.gradual]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
