"""Small frames of the clip for the time strip, decoded with PyAV."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def thumbnail_frames(video: str | Path, times: list[float], height: int = 48) -> list[np.ndarray]:
    """RGB frames (height x w x 3, uint8) at `times` (seconds of the file); [] when the video cannot be read."""
    import av

    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            return [frame for frame in (frame_at(container, stream, t, height) for t in times) if frame is not None]
    except (av.FFmpegError, OSError, IndexError, ValueError):
        return []


def frame_at(container, stream, seconds: float, height: int):
    container.seek(int(max(0.0, seconds) / stream.time_base), stream=stream, backward=True)
    for frame in container.decode(stream):
        if frame.time is None or frame.time + 1e-3 >= seconds:
            width = max(2, round(frame.width * height / max(1, frame.height)) // 2 * 2)
            return frame.to_ndarray(format="rgb24", width=width, height=height)
    return None
