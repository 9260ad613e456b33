"""What the audio families' training loops share: warm-up + cosine learning rate, EMA weights, and the
resumable checkpoint (model, EMA, optimiser, step, random states, history) that continues on any machine.

A training config passed here needs `lr`, `warmup_steps`, `steps` and `min_lr_ratio`; a net needs
`config.to_dict()`.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import numpy as np
import torch


def lr_at(step: int, config) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def ema_of(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def ema_decay_at(step: int, decay: float) -> float:
    """The EMA's decay warmed up, (1 + step) / (10 + step) at first, so a short run's EMA is not its init."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(ema: dict[str, torch.Tensor], net: torch.nn.Module, decay: float) -> None:
    for name, value in net.state_dict().items():
        if value.dtype.is_floating_point:
            ema[name].mul_(decay).add_(value.detach(), alpha=1 - decay)
        else:
            ema[name].copy_(value)


def save(path: Path, net, ema: dict, optimizer, step: int, config, rng: np.random.Generator, history: list) -> None:
    """The checkpoint, written to a temporary file and renamed (a killed run leaves the last good one)."""
    state = {"model": net.state_dict(), "ema": ema, "optimizer": optimizer.state_dict(), "step": step,
             "net_config": net.config.to_dict(), "train_config": asdict(config), "history": history,
             "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}
    write_state(path, state)


def write_state(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    torch.save(state, tmp)
    os.replace(tmp, path)


def resume(path: Path, net, optimizer, rng: np.random.Generator, device: str = "cpu") -> Optional[dict]:
    """Load `path` into the net, optimiser and random states; returns the checkpoint (ema, step, history),
    or None when there is none."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location=device, weights_only=False)
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = state["rng"]
    torch.set_rng_state(state["torch_rng"])
    return state
