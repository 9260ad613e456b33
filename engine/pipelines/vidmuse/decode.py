"""The host loop of one VidMuse window: delay-pattern decoding with top-k sampling and classifier-free guidance.

The step graph runs the conditional and the unconditional (null video) rows as one batch of 2n;
the host mixes their logits, `uncond + scale * (cond - uncond)` (scale 0: the unconditional
path exactly), draws one code per codebook, and feeds the same codes to both halves. Cells of the
delay pattern that hold no code take the special id; prompt cells (the previous window's last
0.5 s) take the prompt's codes. numpy + onnxruntime only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...progress import Progress, report
from .delay import deinterleave, interleave, valid_cells


@dataclass(frozen=True)
class Guidance:
    top_k: int = 250
    temperature: float = 1.0  # 0: greedy
    cfg_scale: float = 3.0


@dataclass(frozen=True)
class StepShape:
    n_layers: int
    n_heads: int
    head_dim: int
    codebooks: int
    special: int


def run_step(step, codes: np.ndarray, position: np.ndarray, caches: list, cross: list):
    """One run of the step graph. `caches`: past_k_0.., past_v_0.. (B, H, P, hd); `cross`: cross_k_0..,
    cross_v_0.. as vidmuse.cross.onnx gives them. Returns logits (B, K, V) and the new caches."""
    n_layers = len(cross) // 2
    names = [f"{p}_{i}" for p in ("past_k", "past_v", "cross_k", "cross_v") for i in range(n_layers)]
    feeds = {"codes": codes, "position": position, **dict(zip(names, list(caches) + list(cross)))}
    out = step.run(None, feeds)
    return out[0], out[1:]


def sample_top_k(logits: np.ndarray, k: int, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """(R, V) logits -> (R,) indices, each drawn among its row's k largest (temperature 0: argmax)."""
    if temperature <= 0:
        return logits.argmax(axis=1)
    k = min(k, logits.shape[1]) if k > 0 else logits.shape[1]
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    scaled = np.take_along_axis(logits, top, axis=1).astype(np.float64) / temperature
    probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    cumulative = np.cumsum(probs, axis=1)
    drawn = rng.random((len(logits), 1)) * cumulative[:, -1:]
    choice = np.minimum((cumulative < drawn).sum(axis=1), k - 1)
    return top[np.arange(len(logits)), choice]


def decode_window(step, shape: StepShape, cross: list[np.ndarray], null: list[np.ndarray],
                  n: int, frames: int, prompt: Optional[np.ndarray], rng: np.random.Generator, guidance: Guidance,
                  progress: Optional[Progress] = None, stage: str = "generate music") -> np.ndarray:
    """`n` variations of `frames` code frames: (n, K, frames). `cross`/`null`: the window's cross K/V
    (as vidmuse.cross.onnx gives them, batch 1) for the video and the null video; `prompt`: (n, K, P)
    codes the window opens with."""
    k_books, special = shape.codebooks, shape.special
    steps = frames + k_books - 1
    both = [np.concatenate([np.repeat(c, n, axis=0), np.repeat(u, n, axis=0)]) for c, u in zip(cross, null)]
    caches = [np.zeros((2 * n, shape.n_heads, 0, shape.head_dim), np.float32)] * (2 * shape.n_layers)
    valid = valid_cells(frames, steps, k_books)
    forced = np.zeros_like(valid)
    prompt_delayed = None
    if prompt is not None and prompt.shape[2]:
        forced = valid_cells(prompt.shape[2], steps, k_books)
        prompt_delayed = np.stack([interleave(p, special)[:, :steps] for p in prompt])
        prompt_delayed = np.pad(prompt_delayed, ((0, 0), (0, 0), (0, steps - prompt_delayed.shape[2])),
                                constant_values=special)
    delayed = np.full((n, k_books, steps), special, np.int64)
    codes = np.full((2 * n, k_books, 1), special, np.int64)  # the start token
    for s in range(steps):
        logits, caches = run_step(step, codes, np.full(2 * n, s, np.int64), caches, both)
        cond, uncond = logits[:n], logits[n:]
        guided = uncond + np.float32(guidance.cfg_scale) * (cond - uncond)
        guided[..., special] = -np.inf  # a real cell never takes the special id
        drawn = sample_top_k(guided.reshape(n * k_books, -1), guidance.top_k, guidance.temperature, rng)
        column = np.where(valid[:, s], drawn.reshape(n, k_books), special)
        if prompt_delayed is not None:
            column = np.where(forced[:, s], prompt_delayed[:, :, s], column)
        delayed[:, :, s] = column
        codes = np.concatenate([column, column])[:, :, None]
        if s % 16 == 0 or s == steps - 1:
            report(progress, stage, (s + 1) / steps)
    return np.stack([deinterleave(d) for d in delayed])
