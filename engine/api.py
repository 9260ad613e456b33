"""`Engine`: the one object the CLI, the OSC bridge and the GUI talk to."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .progress import Progress


class Engine:
    """cuesmith's verbs over plain data.

    >>> engine = Engine()
    >>> analysis = engine.analyze("clip.mp4", start=2.0, end=12.5)
    >>> analysis.cuts
    """

    def __init__(self, cache_dir: Optional[Path] = None, use_cache: bool = True):
        self.cache_dir = cache_dir
        self.use_cache = use_cache

    def analyze(self, video: str | Path, start: Optional[float] = None, end: Optional[float] = None,
                progress: Optional[Progress] = None):
        """Decode `video` once and measure cuts, motion and colour (times relative to `start`)."""
        from .video.analysis import analyze_cached

        return analyze_cached(video, start=start, end=end, progress=progress,
                              cache_dir=self.cache_dir, use_cache=self.use_cache)
