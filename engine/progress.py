"""One progress callback shape for every stage: `progress(stage, fraction)`."""
from __future__ import annotations

import sys
from typing import Callable, Optional

Progress = Callable[[str, float], None]


def no_progress(stage: str, fraction: float) -> None:
    return None


def report(progress: Optional[Progress], stage: str, fraction: float) -> None:
    if progress is not None:
        progress(stage, min(1.0, max(0.0, fraction)))


class TerminalProgress:
    """A tqdm bar on stderr when it is a terminal; silent otherwise (pipes, CI, OSC)."""

    def __init__(self, enabled: Optional[bool] = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bar = None
        self._stage = None

    def __call__(self, stage: str, fraction: float) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if stage != self._stage:
            self.close()
            self._bar = tqdm(total=1000, desc=stage, unit="‰", leave=False, file=sys.stderr,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
            self._stage = stage
        self._bar.n = int(fraction * 1000)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._stage = None
