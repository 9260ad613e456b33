"""MTM's latent diffusion transformer (seed 002, on Stable Audio Open's DiT; REFERENCE.md).

    DiT            pre-norm blocks over the codec latent (T, 128): RoPE self-attention,
                   cross-attention to text tokens, a global token (timestep + start + duration
                   + stylization) prepended to the sequence; predicts v (the v-objective).
    ControlFormer  a copy of the DiT's first `control_layers` blocks fed the broadly retrieved
                   music's latent; zero-initialised in and out, its outputs added to the main
                   branch's hidden states after the matching blocks (so at init it is a no-op).
    Stylization    the target-retrieved music's embedding -> adaptive scale/shift of the global
                   token (zero-initialised: identity at init).

Conditions are dropped (zeroed) with `cond_dropout` while training, which is what the sampler's
classifier-free guidance contrasts against: text tokens, style and control gate all zero (the
text mask is kept, so the null condition is the same tensors zeroed).
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class MTMConfig:
    latent_dim: int = 128  # the codec's continuous latent (engine/codec)
    width: int = 64
    layers: int = 2
    heads: int = 4
    control_layers: int = 1  # blocks copied into the ControlFormer
    text_dim: int = 64  # the text encoder's token width (pipelines/mtm/text.py)
    style_dim: int = 260  # the music embedding of target retrieval (pipelines/mtm/library.py embedding_dim)
    max_seconds: float = 60.0  # scale of the start/duration embedding
    cond_dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


def tiny() -> MTMConfig:
    return MTMConfig()


def cpu_small() -> MTMConfig:
    """What an hour of two CPU cores can train (engine/training/mtm.py "cpu-small")."""
    return MTMConfig(width=128, layers=4, heads=4, control_layers=2, text_dim=64)


def cpu() -> MTMConfig:
    return MTMConfig(width=256, layers=8, heads=8, control_layers=3, text_dim=256)


def gpu() -> MTMConfig:
    return MTMConfig(width=1024, layers=24, heads=16, control_layers=8, text_dim=256)


CONFIGS = {"tiny": tiny, "cpu-small": cpu_small, "cpu": cpu, "gpu": gpu}


def fourier(values: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) scalars in [0, 1] -> (B, dim) sin/cos features."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=values.device) * (-math.log(1000.0) / half))
    angles = values[:, None].float() * 1000.0 * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def rope(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding over the sequence axis of (B, H, T, D)."""
    t, d = x.shape[-2], x.shape[-1]
    half = d // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=x.device) * (-math.log(10000.0) / half))
    angles = torch.arange(t, dtype=torch.float32, device=x.device)[:, None] * freqs[None]
    cos, sin = angles.cos(), angles.sin()
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, config: MTMConfig, memory_dim: int | None = None):
        super().__init__()
        self.heads = config.heads
        self.q = nn.Linear(config.width, config.width)
        self.kv = nn.Linear(memory_dim or config.width, 2 * config.width)
        self.out = nn.Linear(config.width, config.width)
        self.rotary = memory_dim is None

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        return x.view(b, t, self.heads, c // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None, memory_mask: torch.Tensor | None = None):
        source = x if memory is None else memory
        q = self.split(self.q(x))
        k, v = (self.split(p) for p in self.kv(source).chunk(2, dim=-1))
        if self.rotary:
            q, k = rope(q), rope(k)
        bias = None
        if memory_mask is not None:  # (B, S) 1 = a real token
            bias = (1.0 - memory_mask[:, None, None, :].float()) * -1e9
        weights = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
        if bias is not None:
            weights = weights + bias
        h = weights.softmax(dim=-1) @ v
        b, _, t, _ = h.shape
        return self.out(h.transpose(1, 2).reshape(b, t, -1))


class Block(nn.Module):
    def __init__(self, config: MTMConfig):
        super().__init__()
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(config.width) for _ in range(3))
        self.self_attention = Attention(config)
        self.cross_attention = Attention(config, memory_dim=config.width)
        self.mlp = nn.Sequential(nn.Linear(config.width, 4 * config.width), nn.GELU(),
                                 nn.Linear(4 * config.width, config.width))

    def forward(self, x, text, text_mask):
        x = x + self.self_attention(self.norm1(x))
        x = x + self.cross_attention(self.norm2(x), text, text_mask)
        return x + self.mlp(self.norm3(x))


def zero_linear(inputs: int, outputs: int) -> nn.Linear:
    layer = nn.Linear(inputs, outputs)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class ControlFormer(nn.Module):
    """A copy of the DiT's early blocks, zero-initialised in and out (ControlNet-style)."""

    def __init__(self, config: MTMConfig, blocks: nn.ModuleList):
        super().__init__()
        self.embed = nn.Linear(config.latent_dim, config.width)
        self.zero_in = zero_linear(config.width, config.width)
        self.blocks = copy.deepcopy(blocks[:config.control_layers])
        self.zero_out = nn.ModuleList(zero_linear(config.width, config.width) for _ in self.blocks)

    def forward(self, h: torch.Tensor, control: torch.Tensor, text, text_mask) -> list[torch.Tensor]:
        """Residuals to add after each of the first blocks; `control` (B, T, latent) is the retrieved music."""
        global_token = torch.zeros_like(h[:, :1])
        x = h + torch.cat([global_token, self.zero_in(self.embed(control))], dim=1)
        residuals = []
        for block, out in zip(self.blocks, self.zero_out):
            x = block(x, text, text_mask)
            residuals.append(out(x))
        return residuals


class MTMDiT(nn.Module):
    def __init__(self, config: MTMConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.embed = nn.Linear(config.latent_dim, w)
        self.time = nn.Sequential(nn.Linear(w, w), nn.SiLU(), nn.Linear(w, w))
        self.timing = nn.Linear(2 * w, w)  # start, duration
        self.style = zero_linear(config.style_dim, 2 * w)  # adaptive scale/shift of the global token
        self.condition = nn.Sequential(nn.Linear(config.text_dim, w), nn.GELU(), nn.Linear(w, w))
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.control = ControlFormer(config, self.blocks)
        self.norm = nn.LayerNorm(w)
        self.head = nn.Linear(w, config.latent_dim)

    def global_token(self, t, start, duration, style) -> torch.Tensor:
        w = self.config.width
        g = self.time(fourier(t, w))
        g = g + self.timing(torch.cat([fourier(start / self.config.max_seconds, w),
                                       fourier(duration / self.config.max_seconds, w)], dim=-1))
        scale, shift = self.style(style).chunk(2, dim=-1)
        return (g * (1.0 + scale) + shift)[:, None]

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        """The condition encoder: text tokens (B, S, text_dim) -> cross-attention memory (B, S, width)."""
        return self.condition(text)

    def forward(self, x, t, text, text_mask, start, duration, style, control, control_gate):
        """v prediction for noisy latent x (B, T, latent) at t (B,) in [0, 1].

        text (B, S, text_dim) with text_mask (B, S); start/duration (B,) seconds; style (B, style_dim);
        control (B, T, latent), the broadly retrieved music, and control_gate (B,) 0/1 (0: no music).
        """
        return self.step(x, t, self.encode_text(text), text_mask, start, duration, style, control, control_gate)

    def step(self, x, t, memory, text_mask, start, duration, style, control, control_gate):
        """One denoising step given the encoded text (what the exported step graph runs)."""
        h = torch.cat([self.global_token(t, start, duration, style), self.embed(x)], dim=1)
        residuals = self.control(h, control, memory, text_mask)
        gate = control_gate[:, None, None]
        for i, block in enumerate(self.blocks):
            h = block(h, memory, text_mask)
            if i < len(residuals):
                h = h + gate * residuals[i]
        return self.head(self.norm(h[:, 1:]))

    def drop_conditions(self, cond: dict, generator: torch.Generator | None = None) -> dict:
        """Zero each condition of each example with probability `cond_dropout` (classifier-free guidance)."""
        p = self.config.cond_dropout
        b = cond["text"].shape[0]
        out = dict(cond)
        for name in ("text", "style", "control_gate"):
            keep = (torch.rand(b, generator=generator) >= p).float()
            value = cond[name]
            out[name] = value * keep.view(-1, *([1] * (value.dim() - 1)))
        return out


def v_target(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The noisy latent and its v target under the cosine schedule alpha = cos(pi t/2), sigma = sin(pi t/2)."""
    alpha, sigma = (torch.cos(t * math.pi / 2)[:, None, None], torch.sin(t * math.pi / 2)[:, None, None])
    return alpha * x0 + sigma * noise, alpha * noise - sigma * x0


def v_loss(model: MTMDiT, x0: torch.Tensor, cond: dict, generator: torch.Generator | None = None) -> torch.Tensor:
    b = x0.shape[0]
    t = torch.rand(b, generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    xt, v = v_target(x0, noise, t)
    cond = getattr(model, "module", model).drop_conditions(cond, generator)  # (the net inside DDP)
    return F.mse_loss(model(xt, t, **cond), v)
