"""Opening a video with PyAV and streaming small RGB frames from one decode.

Every failure a user can cause (missing file, not a video, audio only, no
frames, truncated) becomes a CuesmithError naming the file and the problem.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Optional

import av
from av.video.reformatter import VideoReformatter
import numpy as np

from ..cores import free_cores
from ..errors import CuesmithError
from ..files import regular_file

TRUNCATION_TOLERANCE_S = 1.0
# FFmpeg's decoder threads; None: chosen per clip by decode_threads(). Results do not depend on it.
DECODE_THREADS: Optional[str] = None


@dataclass
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int
    duration: Optional[float]


@dataclass
class VideoInfo:
    path: str
    container: str
    codec: str
    width: int  # as displayed, after rotation
    height: int
    coded_width: int
    coded_height: int
    rotation: int  # degrees the player turns the picture, from the display matrix
    nominal_fps: float
    declared_duration: Optional[float]
    audio: Optional[AudioInfo]

    def to_dict(self) -> dict:
        return asdict(self)


def check_path(path: Path) -> None:
    regular_file(path, "video file")  # a FIFO or /dev/zero would block or never end
    if path.stat().st_size == 0:
        raise CuesmithError("is empty (0 bytes)", path)


def open_container(path: Path):
    check_path(path)
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise CuesmithError("is not a video FFmpeg can read (invalid data; truncated or not a media file)",
                            path) from None
    except av.error.EOFError:
        raise CuesmithError("ends before its first frame (truncated, or a video with no frames)", path) from None
    except av.error.FFmpegError as error:
        raise CuesmithError(f"cannot be opened by FFmpeg ({error.strerror})", path) from None
    if not container.streams:
        container.close()
        raise CuesmithError("contains no streams (no video frames)", path)
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        container.close()
        what = "audio only" if kinds == ["audio"] else f"streams: {', '.join(kinds) or 'none'}"
        raise CuesmithError(f"has no video stream ({what})", path, "give a video file")
    return container


def stream_seconds(value, time_base) -> Optional[float]:
    return None if value is None or time_base is None else float(value * time_base)


def probe(container, path: Path) -> VideoInfo:
    stream = container.streams.video[0]
    ctx = stream.codec_context
    declared = stream_seconds(stream.duration, stream.time_base)
    if declared is None and container.duration is not None:
        declared = container.duration / av.time_base
    rotation = display_rotation(stream)
    width, height = ctx.width, ctx.height
    if rotation % 180 == 90:
        width, height = height, width
    audio = None
    if container.streams.audio:
        a = container.streams.audio[0]
        audio = AudioInfo(a.codec_context.name, a.codec_context.sample_rate or 0,
                          a.codec_context.channels or 0, stream_seconds(a.duration, a.time_base))
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return VideoInfo(str(path), container.format.name, ctx.name, width, height, ctx.width, ctx.height,
                     rotation, float(rate) if rate else 0.0, declared, audio)


def display_rotation(stream) -> int:
    """Rotation in degrees (0, 90, 180, 270) from the stream's display matrix or 'rotate' tag."""
    tag = stream.metadata.get("rotate")
    if tag is not None:
        try:
            return int(float(tag)) % 360
        except ValueError:
            pass
    return 0  # newer files carry a display matrix instead: read per frame, see frame_rotation()


def decode_threads() -> str:
    """Frame threads ("AUTO") when cores are idle: less wall time, but a fifth more CPU time in
    synchronisation (bench_video); on a busy machine one decoding thread ("SLICE": slices only) finishes
    sooner, with the per-frame measures on their own thread beside it."""
    return "AUTO" if free_cores() > 1 else "SLICE"


# Containers whose index lets a seek land on a keyframe; other streams are decoded in one span.
INDEXED_FORMATS = {"mov", "mp4", "matroska", "webm"}


def nearest_keyframe(container, t: float) -> Optional[float]:
    """The keyframe time (seconds from file start) nearest to `t`, from the container's index; None where
    the format has no index or a seek does not land on a keyframe."""
    if not INDEXED_FORMATS & set(container.format.name.split(",")):
        return None
    stream = container.streams.video[0]
    origin = stream_seconds(stream.start_time, stream.time_base) or 0.0
    found = []
    for backward in (True, False):  # the keyframe at or before t, then the one after it
        try:
            container.seek(int(round((t + origin) / stream.time_base)), stream=stream, backward=backward)
            packet = next((p for p in container.demux(stream) if p.pts is not None), None)
        except (av.error.FFmpegError, StopIteration):
            continue
        if packet is not None and not packet.is_keyframe:
            return None  # the seek is not by the index: spans could start on a frame that needs earlier ones
        if packet is not None:
            found.append(float(packet.pts * stream.time_base) - origin)
    if not found:
        return None
    return min(found, key=lambda key: abs(key - t))


def frame_rotation(frame) -> int:
    # The frame's rotation is counter-clockwise in FFmpeg's convention; players turn it back.
    return int(round(-getattr(frame, "rotation", 0))) % 360


def analysis_size(width: int, height: int, target: int) -> tuple[int, int]:
    scale = target / max(1, width)
    return target, max(2, int(round(height * scale / 2)) * 2)


def iter_frames(container, path: Path, start: float, end: Optional[float], width: int = 128,
                fast: bool = False, threads: Optional[str] = None) -> Iterator[tuple[float, np.ndarray, int]]:
    """Yield (seconds from file start, RGB frame `width` pixels wide, rotation) for frames in [start, end).

    `fast`: skip the codec's in-loop deblocking filter (H.264, HEVC). Its effect is a few levels at
    block edges, averaged away at analysis size; it is a large share of decoding.
    `threads`: FFmpeg's thread type; None: decode_threads() chooses.
    """
    stream = container.streams.video[0]
    stream.thread_type = DECODE_THREADS or threads or decode_threads()
    if fast:
        stream.codec_context.options = {**stream.codec_context.options, "skip_loop_filter": "all"}
    origin = stream_seconds(stream.start_time, stream.time_base) or 0.0
    if start > 0:
        # rounded: a start read from a keyframe's own timestamp must seek to that keyframe, not the one before
        container.seek(int(round((start + origin) / stream.time_base)), stream=stream, backward=True)
    size = None
    fallback_index = 0
    # One reformatter for the whole stream: frame.reformat() builds a new swscale
    # context per frame, which cost more than decoding itself (bench_video).
    scaler = VideoReformatter()
    try:
        for frame in container.decode(stream):
            t = frame.time if frame.time is not None else fallback_index / float(stream.average_rate or 30)
            fallback_index += 1
            t -= origin
            if t < start - 1e-6:
                continue
            if end is not None and t >= end - 1e-6:
                break
            if size is None:
                size = analysis_size(frame.width, frame.height, width)
            # to RGBA, alpha dropped: swscale's packed 32-bit output path costs a quarter less than rgb24's
            # (1080p H.264 to 128 wide: 0.75 vs 1.0 ms a frame), values within a few levels of it
            small = scaler.reformat(frame, width=size[0], height=size[1], format="rgba", interpolation="AREA")
            yield t, small.to_ndarray()[..., :3], frame_rotation(frame)
    except av.error.InvalidDataError:
        raise CuesmithError("has corrupt video data (truncated or damaged file)", path) from None
    except av.error.FFmpegError as error:
        raise CuesmithError(f"failed to decode ({error.strerror})", path) from None
