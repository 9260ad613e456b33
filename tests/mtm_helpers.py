"""Synthetic music for the MTM tests: a triad pad and a click on every beat, at a known tempo and mode."""
import numpy as np

RATE = 32_000


def piece(bpm: float, mode: str, seconds: float = 8.0, root: float = 220.0) -> np.ndarray:
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    third = root * 2 ** ((4 if mode == "major" else 3) / 12)
    x = 0.08 * sum(np.sin(2 * np.pi * f * t) for f in (root, third, root * 2 ** (7 / 12)))
    beat = 60.0 / bpm
    click = 0.6 * np.exp(-np.arange(1600) / 200) * np.sin(2 * np.pi * 1000 * np.arange(1600) / RATE)
    for k in range(int(seconds / beat)):
        a = int(k * beat * RATE)
        m = min(n - a, len(click))
        x[a:a + m] += click[:m]
    return x.astype(np.float32)
