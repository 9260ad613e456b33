"""A TEST STAND-IN for the audio codec (issue 15's engine/codec/runtime.py `Codec`), same decode interface.

Not a codec: each code frame (640 samples at 32 kHz, EnCodec-32k's hop) becomes a sum of one sine per
codebook, its pitch chosen by the code, so the waveform is a deterministic function of the codes. Named in
a test model's manifest as {"codec": {"module": "<this file>"}} (pipelines/vidmuse/pipeline.py `load_codec`).
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 32_000
HOP = 640
SPECIAL = 2048


class StandInCodec:
    sample_rate = SAMPLE_RATE

    def decode_codes(self, codes: np.ndarray, samples=None, progress=None) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[0] != 4 or codes.min() < 0 or codes.max() > SPECIAL:
            raise ValueError(f"codes must be (4, T) in 0..{SPECIAL}, not {codes.shape}")
        t = np.arange(HOP) / SAMPLE_RATE
        out = np.zeros(codes.shape[1] * HOP, np.float32)
        for k, row in enumerate(codes):
            pitch = 110.0 * 2.0 ** ((row % 48) / 12.0)
            frames = np.sin(2 * np.pi * pitch[:, None] * t[None, :]) * (row != SPECIAL)[:, None]
            out += (0.1 / (k + 1) * frames).astype(np.float32).ravel()
        return out[:samples] if samples else out


def load() -> StandInCodec:
    return StandInCodec()
