"""A test-only model family: audio only (no Song), a fixed buffer built from the plan.

Registered by the tests with CUESMITH_FAMILIES="fixed_audio=<this file>" (engine/pipelines/__init__.py);
nothing else in the engine knows it. Each variation: a soft 220 Hz tone ("pad") and a click on every beat
of the plan ("clicks"), as float32 at 22.05 kHz.
"""
from __future__ import annotations

import numpy as np

from cuesmith.engine.music.music import Music

RATE = 22_050
CLICK = np.hanning(256).astype(np.float32) * np.sin(np.arange(256) * 2 * np.pi * 2000 / RATE).astype(np.float32)


class FixedAudio:
    info = {"family": "fixed_audio", "folder": "", "graphs": {}, "manifest_id": "test-fixed-audio"}
    providers = {"audio": "numpy"}

    def generate(self, plan, inputs, n, seed, sampling, progress) -> list[Music]:
        frames = int(round(plan.duration * RATE))
        pad = (0.05 * np.sin(2 * np.pi * 220 * np.arange(frames) / RATE)).astype(np.float32)
        clicks = np.zeros(frames, dtype=np.float32)
        for seconds, downbeat in plan.beat_seconds():
            at = int(seconds * RATE)
            piece = CLICK[:frames - at] * (0.9 if downbeat else 0.6)
            clicks[at:at + len(piece)] += piece
        report = {"providers": dict(self.providers), "timings": {"audio": 0.0}}
        return [Music(stems={"pad": pad, "clicks": clicks}, sample_rate=RATE, report=report) for _ in range(n)]


def load(model_dir=None, int8: bool = False) -> FixedAudio:
    return FixedAudio()
