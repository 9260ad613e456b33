"""DPM-Solver++ (2M, data prediction) with classifier-free guidance, in numpy.

The schedule is the DiT's (engine/nets/mtm.py): alpha = cos(pi t / 2), sigma = sin(pi t / 2),
t from 1 (noise) to 0 (data). `denoise(x, t, cond)` returns the model's data prediction x0;
`cond` is whatever the caller's denoiser understands, `null` its dropped-condition twin.
Guidance 1 runs the conditional path alone (no unconditional call).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from ...progress import Progress, report

Denoise = Callable[[np.ndarray, float, Any], np.ndarray]


def alpha_sigma(t: float) -> tuple[float, float]:
    return float(np.cos(t * np.pi / 2)), float(np.sin(t * np.pi / 2))


def log_snr(t: float) -> float:
    alpha, sigma = alpha_sigma(t)
    if sigma <= 0.0:
        return np.inf
    return float(np.log(max(alpha, 1e-30)) - np.log(sigma))


def times(steps: int) -> np.ndarray:
    """`steps` intervals from t = 1 to 0, uniform in t."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    return np.linspace(1.0, 0.0, steps + 1)


def guided(denoise: Denoise, x: np.ndarray, t: float, cond: Any, null: Any, guidance: float) -> np.ndarray:
    conditional = denoise(x, t, cond)
    if guidance == 1.0:
        return conditional
    unconditional = denoise(x, t, null)
    return unconditional + guidance * (conditional - unconditional)


def dpm_solver_2m(denoise: Denoise, x: np.ndarray, cond: Any, null: Any = None, guidance: float = 1.0,
                  steps: int = 20, progress: Optional[Progress] = None) -> np.ndarray:
    """Integrate the probability-flow ODE from noise `x` (at t = 1) to data (t = 0)."""
    grid = times(steps)
    previous, previous_h = None, None
    for i in range(steps):
        s, t = grid[i], grid[i + 1]
        x0 = guided(denoise, x, float(s), cond, null, guidance)
        h = log_snr(t) - log_snr(s)
        d = x0
        if previous is not None and np.isfinite(h):  # second order but on the last step (h infinite)
            r = previous_h / h
            d = (1.0 + 1.0 / (2.0 * r)) * x0 - (1.0 / (2.0 * r)) * previous
        (alpha_t, sigma_t), (_, sigma_s) = alpha_sigma(t), alpha_sigma(s)
        x = (sigma_t / sigma_s) * x - alpha_t * np.expm1(-h) * d
        previous, previous_h = x0, h
        report(progress, "diffusion", (i + 1) / steps)
    return x.astype(np.float32)


def sample(denoise: Denoise, shape: tuple[int, ...], cond: Any, null: Any = None, guidance: float = 1.0,
           steps: int = 20, seed: int = 0, progress: Optional[Progress] = None,
           noise: Optional[np.ndarray] = None) -> np.ndarray:
    """Seeded: the starting noise is drawn from numpy's PCG64 with `seed` (or given as `noise`)."""
    if noise is None:
        noise = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return dpm_solver_2m(denoise, noise, cond, null, guidance, steps, progress)


def x0_from_v(x: np.ndarray, v: np.ndarray, t: float) -> np.ndarray:
    """The data prediction from a v prediction (the DiT's objective)."""
    alpha, sigma = alpha_sigma(t)
    return alpha * x - sigma * v
