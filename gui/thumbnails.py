"""Small frames of the clip for the time strip, decoded with PyAV in one pass (a seek only to jump far)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

SEEK_GAP = 4.0  # seconds: nearer targets are reached by decoding on, farther ones by a seek


def thumbnail_frames(video: str | Path, times: list[float], height: int = 48) -> list[np.ndarray]:
    """RGB frames (height x w x 3, uint8) at `times` (seconds of the file, ascending); [] when unreadable."""
    import av

    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            return list(frames_at(container, stream, sorted(times), height))
    except (av.FFmpegError, OSError, IndexError, ValueError):
        return []


def frames_at(container, stream, times: list[float], height: int):
    pending = list(times)
    position = None  # time of the last decoded frame
    while pending:
        if position is None or pending[0] - position > SEEK_GAP:
            container.seek(int(max(0.0, pending[0] - 0.5) / stream.time_base), stream=stream, backward=True)
        found = False
        for frame in container.decode(stream):
            position = frame.time if frame.time is not None else position
            if position is None or position + 1e-3 >= pending[0]:
                yield scaled(frame, height)
                pending.pop(0)
                found = True
                if not pending or pending[0] - (position or 0.0) > SEEK_GAP:
                    break
        if not found:
            return  # the file ends before the remaining times


def scaled(frame, height: int) -> np.ndarray:
    width = max(2, round(frame.width * height / max(1, frame.height)) // 2 * 2)
    return frame.to_ndarray(format="rgb24", width=width, height=height)
