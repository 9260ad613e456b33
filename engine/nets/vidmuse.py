"""VidMuse (seed 001): visual encoder -> long-short-term visual module -> MusicGen-style token decoder.

    visual encoder  per frame, (50 tokens, visual_dim) -> d_visual. Pluggable by `visual_dim`: the
                    offline default reads the patch statistics of pipelines/vidmuse/features.py
                    (N_STATS = 9 per token, 7 x 7 grid + a summary token); CLIP ViT-B/32's last hidden
                    state (768) fits the same slot.
    LSTV            a 2-layer transformer within each frame (learned 1 x 50 position embedding), one
                    for the local stream (2 fps inside the window) and one for the global stream (frames
                    spread over the whole video); tokens flattened over time (local frames also get a
                    sinusoid of their index: the reference has no time signal between frames); fusion:
                    queries local, keys/values global, residual + LayerNorm, a zero-initialised linear
                    added to the local tokens; a linear to the decoder's width.
    decoder         4 codebooks in the delay pattern (pipelines/vidmuse/delay.py): summed codebook
                    embeddings + sinusoidal positions, pre-norm layers (self-attention, cross-attention
                    to the fused video tokens, feed-forward), no biases, 4 heads of codebook_size + 1 logits.

For export the decoder also runs one step at a time (`step`) with a self-attention KV cache, its
cross-attention K/V computed once per window (`cross_kv`) and passed in.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..pipelines.vidmuse.features import N_STATS, TOKENS_PER_FRAME
from .layers import merge_heads, sinusoid, split_heads

CLIP_WIDTH = 768  # ViT-B/32 last_hidden_state width


@dataclass
class VidMuseConfig:
    name: str = "tiny"
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 2
    d_ff: int = 64
    d_visual: int = 32  # LSTV width
    visual_heads: int = 2
    frame_layers: int = 1  # per-frame transformer layers of each stream (reference: 2)
    visual_dim: int = N_STATS  # per-token input: patch statistics, or CLIP_WIDTH for CLIP features
    tokens_per_frame: int = TOKENS_PER_FRAME
    codebooks: int = 4
    codebook_size: int = 2048  # the special id is codebook_size
    dropout: float = 0.0
    frame_rate: int = 50  # codec tokens per second
    local_fps: float = 2.0
    global_frames: int = 32  # at inference (the reference trains with 64)
    window_seconds: float = 30.0
    prompt_seconds: float = 0.5

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def special(self) -> int:
        return self.codebook_size

    @property
    def window_frames(self) -> int:
        return int(round(self.window_seconds * self.frame_rate))

    @property
    def local_frames(self) -> int:
        return int(round(self.window_seconds * self.local_fps))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "VidMuseConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


CONFIGS = {
    # the tests': seconds on 2 cores; 2 s windows
    "tiny": VidMuseConfig(window_seconds=2.0, global_frames=4),
    # trains on 2 CPU cores (slowly) on the paired corpus
    "cpu": VidMuseConfig("cpu", d_model=256, n_heads=4, n_layers=4, d_ff=1024, d_visual=128, visual_heads=4,
                         frame_layers=2, window_seconds=10.0, global_frames=16),
    # what about one hour of one shared CPU thread moves (the shipped weights): a "cpu" step took 20-60 s there
    "cpu-hour": VidMuseConfig("cpu-hour", d_model=128, n_heads=4, n_layers=3, d_ff=512, d_visual=64, visual_heads=2,
                              frame_layers=1, window_seconds=10.0, global_frames=16),
    # VidMuse-small (MusicGen-small's decoder), for a GPU
    "small": VidMuseConfig("small", d_model=1024, n_heads=16, n_layers=24, d_ff=4096, d_visual=768,
                           visual_heads=12, frame_layers=2, dropout=0.1),
}


def attend(q, k, v, causal: bool = False, keys_transposed: bool = False) -> torch.Tensor:
    """q (B,H,Tq,D), k/v (B,H,Tk,D) (k as (B,H,D,Tk) when `keys_transposed`); written out (no fused
    kernel) so it exports as plain ops."""
    scores = q @ (k if keys_transposed else k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    if causal:
        tq, tk = q.shape[2], k.shape[2]
        allowed = torch.ones(tq, tk, dtype=torch.bool, device=q.device).tril(tk - tq)
        scores = scores.masked_fill(~allowed, -1e9)
    return torch.softmax(scores, dim=-1) @ v


class Attention(nn.Module):
    """Multi-head attention; queries from `x`, keys/values from `memory` (itself when None)."""

    def __init__(self, width: int, n_heads: int, bias: bool):
        super().__init__()
        self.q = nn.Linear(width, width, bias=bias)
        self.kv = nn.Linear(width, 2 * width, bias=bias)
        self.out = nn.Linear(width, width, bias=bias)
        self.n_heads = n_heads

    def keys_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(memory).chunk(2, dim=-1)
        return split_heads(k, self.n_heads), split_heads(v, self.n_heads)

    def forward(self, x, memory=None, causal: bool = False, past=None, kv=None):
        """Returns (output, k, v): k/v are the keys and values attended to (the new cache for self-attention).
        `kv`: precomputed (keys transposed (B,H,D,S), values (B,H,S,D)), as `cross_kv` gives them."""
        q = split_heads(self.q(x), self.n_heads)
        if kv is not None:
            return self.out(merge_heads(attend(q, kv[0], kv[1], keys_transposed=True))), kv[0], kv[1]
        k, v = self.keys_values(x if memory is None else memory)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        return self.out(merge_heads(attend(q, k, v, causal))), k, v


class FeedForward(nn.Module):
    def __init__(self, width: int, hidden: int, bias: bool, dropout: float):
        super().__init__()
        self.up, self.down = nn.Linear(width, hidden, bias=bias), nn.Linear(hidden, width, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(self.down(F.gelu(self.up(x))))


class FrameBlock(nn.Module):
    """Pre-norm self-attention + feed-forward over the 50 tokens of a frame."""

    def __init__(self, width: int, n_heads: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = Attention(width, n_heads, bias=True)
        self.ff = FeedForward(width, 4 * width, bias=True, dropout=dropout)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))[0]
        return x + self.ff(self.norm2(x))


class FrameStream(nn.Module):
    """One stream of the LSTV: per-frame transformer, then the frames' tokens flattened over time."""

    def __init__(self, c: VidMuseConfig, time_signal: bool):
        super().__init__()
        self.position = nn.Parameter(torch.zeros(1, c.tokens_per_frame, c.d_visual))
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(FrameBlock(c.d_visual, c.visual_heads, c.dropout) for _ in range(c.frame_layers))
        self.time_signal = time_signal

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, N, P, D) -> (B, N * P, D)."""
        b, n, p, d = frames.shape
        x = frames.reshape(b * n, p, d) + self.position
        for block in self.blocks:
            x = block(x)
        x = x.reshape(b, n, p, d)
        if self.time_signal:
            x = x + sinusoid(torch.arange(n, device=x.device), d)[None, :, None, :]
        return x.reshape(b, n * p, d)


class LSTV(nn.Module):
    """Long-short-term visual module: local tokens query the global ones; out: (B, Ns * P, d_model)."""

    def __init__(self, c: VidMuseConfig):
        super().__init__()
        self.local, self.globl = FrameStream(c, time_signal=True), FrameStream(c, time_signal=False)
        self.fusion = Attention(c.d_visual, c.visual_heads, bias=True)
        self.fusion_norm = nn.LayerNorm(c.d_visual)
        self.fusion_out = nn.Linear(c.d_visual, c.d_visual)
        nn.init.zeros_(self.fusion_out.weight)
        nn.init.zeros_(self.fusion_out.bias)
        self.to_lm = nn.Linear(c.d_visual, c.d_model)

    def forward(self, local: torch.Tensor, globl: torch.Tensor) -> torch.Tensor:
        short, long = self.local(local), self.globl(globl)
        fused = self.fusion_norm(short + self.fusion(short, memory=long)[0])
        return self.to_lm(short + self.fusion_out(fused))


class DecoderLayer(nn.Module):
    def __init__(self, c: VidMuseConfig):
        super().__init__()
        self.norm_self = nn.LayerNorm(c.d_model, bias=False)
        self.norm_cross = nn.LayerNorm(c.d_model, bias=False)
        self.norm_ff = nn.LayerNorm(c.d_model, bias=False)
        self.self_attn = Attention(c.d_model, c.n_heads, bias=False)
        self.cross_attn = Attention(c.d_model, c.n_heads, bias=False)
        self.ff = FeedForward(c.d_model, c.d_ff, bias=False, dropout=c.dropout)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, cross_k, cross_v, past=None):
        y, k, v = self.self_attn(self.norm_self(x), causal=past is None, past=past)
        x = x + self.drop(y)
        x = x + self.drop(self.cross_attn(self.norm_cross(x), kv=(cross_k, cross_v))[0])
        return x + self.ff(self.norm_ff(x)), k, v


class VidMuse(nn.Module):
    def __init__(self, config: VidMuseConfig):
        super().__init__()
        c = self.config = config
        self.visual = nn.Linear(c.visual_dim, c.d_visual)  # the pluggable encoder's projection to the LSTV
        self.lstv = LSTV(c)
        self.embed = nn.ModuleList(nn.Embedding(c.codebook_size + 1, c.d_model) for _ in range(c.codebooks))
        self.layers = nn.ModuleList(DecoderLayer(c) for _ in range(c.n_layers))
        self.norm_out = nn.LayerNorm(c.d_model, bias=False)
        self.heads = nn.ModuleList(nn.Linear(c.d_model, c.codebook_size + 1, bias=False) for _ in range(c.codebooks))

    # -- the condition (once per window) ------------------------------------------------
    def video_tokens(self, local: torch.Tensor, globl: torch.Tensor) -> torch.Tensor:
        """local (B, Ns, 50, visual_dim), global (B, Nl, 50, visual_dim) -> (B, Ns * 50, d_model)."""
        return self.lstv(self.visual(local), self.visual(globl))

    def cross_kv(self, tokens: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Video tokens -> per layer the cross-attention keys (B, H, head_dim, S), stored transposed so a
        step reads them as they lie, and values (B, H, S, head_dim). One tensor per layer: a stacked
        tensor would be split (copied) at every step."""
        pairs = [layer.cross_attn.keys_values(tokens) for layer in self.layers]
        return [k.transpose(-1, -2).contiguous() for k, _ in pairs], [v.contiguous() for _, v in pairs]

    # -- the decoder ------------------------------------------------------------------------
    def embed_codes(self, codes: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """codes (B, K, T), positions (B, T) -> (B, T, d_model)."""
        x = sinusoid(positions, self.config.d_model)
        for k, table in enumerate(self.embed):
            x = x + table(codes[:, k])
        return x

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, d_model) -> (B, K, T, codebook_size + 1)."""
        x = self.norm_out(x)
        return torch.stack([head(x) for head in self.heads], dim=1)

    def forward(self, codes: torch.Tensor, local: torch.Tensor, globl: torch.Tensor) -> torch.Tensor:
        """Teacher-forced: delayed input codes (B, K, T) -> logits (B, K, T, V)."""
        cross_k, cross_v = self.cross_kv(self.video_tokens(local, globl))
        b, _, t = codes.shape
        x = self.embed_codes(codes, torch.arange(t, device=codes.device).expand(b, t))
        for i, layer in enumerate(self.layers):
            x = layer(x, cross_k[i], cross_v[i])[0]
        return self.logits(x)

    def step(self, codes, position, past_k: list, past_v: list, cross_k: list, cross_v: list):
        """One step: codes (B, K, 1), position (B,), per layer the caches (B, H, P, hd) and the cross K/V
        (`cross_kv`) -> logits (B, K, V), per layer present_k, present_v (B, H, P + 1, hd)."""
        x = self.embed_codes(codes, position[:, None])
        keys, values = [], []
        for i, layer in enumerate(self.layers):
            x, k, v = layer(x, cross_k[i], cross_v[i], past=(past_k[i], past_v[i]))
            keys.append(k)
            values.append(v)
        return self.logits(x)[:, :, 0], keys, values


def build(config: VidMuseConfig | str) -> VidMuse:
    return VidMuse(CONFIGS[config] if isinstance(config, str) else config)
