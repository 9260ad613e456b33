"""`Music`: what a model family generates for one variation.

A symbolic family fills `song` (and the job may render it to stems); an audio
family fills `stems` (float32 arrays, (frames,) or (frames, channels), at
`sample_rate`) and perhaps `mix`; a family may give both. `report` holds what
the family measured while generating (providers, seconds per stage).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from .score import Song


@dataclass
class Music:
    song: Optional[Song] = None
    stems: dict[str, np.ndarray] = field(default_factory=dict)  # name -> samples
    sample_rate: int = 0  # of the stems and the mix
    mix: Optional[np.ndarray] = None  # None: the sum of the stems
    report: dict[str, Any] = field(default_factory=dict)  # "providers": {stage: provider}, "timings": {stage: s}

    @property
    def has_audio(self) -> bool:
        return bool(self.stems) or self.mix is not None

    def audio_mix(self) -> Optional[np.ndarray]:
        """The mix, or the stems summed (padded to the longest), as float32; None without audio."""
        if self.mix is not None or not self.stems:
            return self.mix
        stems = [np.asarray(s, dtype=np.float32) for s in self.stems.values()]
        stereo = [s if s.ndim == 2 else np.stack([s, s], axis=1) for s in stems]
        mix = np.zeros((max(len(s) for s in stereo), 2), dtype=np.float32)
        for s in stereo:
            mix[:len(s)] += s[:, :2]
        return mix
