"""Building blocks shared by the three V-MusProd nets (nanoGPT style, pre-norm).

Every net reads compound tokens (`engine.music.tokens`, one row of N_FIELDS
ints per token) plus a per-token *context* row (CONTEXT_FIELDS): the bar,
beat, tempo bin, progress through the piece (the paper's timing encoding)
and the per-bar control attributes of the token's bar (the explicit bridge).

Attention is written out (matmul, mask, softmax) rather than fused so that
the same code exports cleanly to ONNX; masks are boolean, True = may attend.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..music.controls import CONTROL_SIZES
from ..music.tokens import N_FIELDS, VOCAB, TokenType
from ..runtime.context import CONTEXT_FIELDS, MAX_BEATS, PROGRESS_BINS  # noqa: F401 (re-exported)

N_TYPES = len(TokenType)
# fields a token of each type carries; the others are 0 ("n/a") and are not predicted
TYPE_FIELDS = {
    TokenType.BAR: (1, 2),  # meter, tempo
    TokenType.POSITION: (3,),  # position
    TokenType.CHORD: (4, 5, 7),  # root, quality, duration
    TokenType.NOTE: (6, 7, 8),  # pitch, duration, velocity
}
NEG_INF = -1e9


@dataclass
class NetConfig:
    """Sizes of one stage's net. `n_encoder_layers` = 0 means no token encoder (the chord net)."""

    stage: str = "chord"
    d_model: int = 256
    n_heads: int = 4
    n_layers: int = 4
    n_encoder_layers: int = 0
    d_ff: int = 1024
    dropout: float = 0.1
    max_bars: int = 64
    d_video: int = 16  # width of the optional video feature sequence (chord net memory)
    bar_window: int = 1  # decoder tokens see encoder tokens of bars b-1..b+1; -1: all
    field_sizes: tuple[int, ...] = field(default_factory=lambda: tuple(VOCAB.sizes))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def context_sizes(self) -> tuple[int, ...]:
        return (self.max_bars, MAX_BEATS, self.field_sizes[2], PROGRESS_BINS) + tuple(CONTROL_SIZES)

    @property
    def has_token_encoder(self) -> bool:
        return self.n_encoder_layers > 0


def sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(..., dim) sinusoidal encoding of integer positions."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=positions.device)
                      * (-math.log(10000.0) / half))
    angles = positions.to(torch.float32).unsqueeze(-1) * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class TokenEmbedding(nn.Module):
    """Sum of one embedding per token field, per context field, and a sinusoid of the position."""

    def __init__(self, config: NetConfig):
        super().__init__()
        self.fields = nn.ModuleList(nn.Embedding(n, config.d_model) for n in config.field_sizes)
        self.context = nn.ModuleList(nn.Embedding(n, config.d_model) for n in config.context_sizes)
        self.limits = config.context_sizes
        self.drop = nn.Dropout(config.dropout)
        self.d_model = config.d_model

    def forward(self, tokens: torch.Tensor, context: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        # One Gather over the tables side by side, one index per field (offset into its table): the same
        # sum as a lookup per field, but in the exported decoder step the per-field lookups, their index
        # Squeezes and Clips were 60 of its 243 nodes (issue 19). The tables stay separate parameters.
        table = torch.cat([e.weight for e in (*self.fields, *self.context)])
        sizes = [e.num_embeddings for e in (*self.fields, *self.context)]
        offsets = torch.tensor([0] + sizes[:-1], device=tokens.device).cumsum(0)
        highest = torch.tensor(self.limits, device=tokens.device) - 1
        index = torch.cat([tokens, torch.minimum(context.clamp(min=0), highest)], dim=-1) + offsets
        return self.drop(sinusoid(positions, self.d_model) + table[index].sum(dim=-2))


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B,T,H*D) -> (B,H,T,D); for one token (the decoder step) a reshape alone, no Transpose in its graph."""
    b, t, width = x.shape
    if t == 1:
        return x.reshape(b, n_heads, 1, width // n_heads)
    return x.view(b, t, n_heads, width // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B,H,T,D) -> (B,T,H*D), the inverse of `split_heads`."""
    b, h, t, d = x.shape
    if t == 1:
        return x.reshape(b, 1, h * d)
    return x.transpose(1, 2).reshape(b, t, h * d)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """q (B,H,Tq,D), k/v (B,H,Tk,D), allowed broadcastable to (B,H,Tq,Tk)."""
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~allowed, NEG_INF)
    return torch.softmax(scores, dim=-1) @ v


class AppendAttention(torch.autograd.Function):
    """Self-attention of one new token over preallocated caches (B,H,capacity,Dh) that hold `seqlens_k`
    tokens per row: its K/V are written at slot seqlens_k, it attends to slots 0..seqlens_k.

    In an exported graph this is ONNX Runtime's GroupQueryAttention (com.microsoft, CPU kernel), fed the
    packed q|k|v projection; bound to one buffer as both past and present cache it appends in place, so
    a step neither copies nor concatenates the cache (issue 19). Here the same math in torch."""

    @staticmethod
    def forward(ctx, qkv, cache_k, cache_v, seqlens_k, total_length, n_heads: int):
        q, k, v = (split_heads(part, n_heads) for part in qkv.chunk(3, dim=-1))
        rows, slot = torch.arange(len(seqlens_k)), seqlens_k.long()
        cache_k, cache_v = cache_k.clone(), cache_v.clone()
        cache_k[rows, :, slot], cache_v[rows, :, slot] = k[:, :, 0], v[:, :, 0]
        allowed = torch.arange(cache_k.shape[2]).view(1, 1, 1, -1) <= slot.view(-1, 1, 1, 1)
        return merge_heads(attend(q, cache_k, cache_v, allowed)), cache_k, cache_v

    @staticmethod
    def symbolic(g, qkv, cache_k, cache_v, seqlens_k, total_length, n_heads: int):
        absent = g.op("prim::Constant")  # the separate key and value inputs: q|k|v come packed
        absent.setType(torch._C.OptionalType.ofTensor())
        return g.op("com.microsoft::GroupQueryAttention", qkv, absent, absent, cache_k, cache_v, seqlens_k,
                    total_length, num_heads_i=n_heads, kv_num_heads_i=n_heads, outputs=3)


class SelfAttention(nn.Module):
    def __init__(self, config: NetConfig):
        super().__init__()
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, past_k=None, past_v=None, append=None):
        """`append` = (seqlens_k, total_length): past_k/v are preallocated caches (`AppendAttention`)."""
        if append is not None:
            y, k, v = AppendAttention.apply(self.qkv(x), past_k, past_v, *append, self.n_heads)
            return self.out(y), k, v
        q, k, v = (split_heads(part, self.n_heads) for part in self.qkv(x).chunk(3, dim=-1))
        if past_k is not None:
            k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        y = self.drop(self.out(merge_heads(attend(q, k, v, allowed))))
        return y, k, v


class CrossAttention(nn.Module):
    """Queries from the decoder; keys/values from a memory, computable once (`memory_kv`)."""

    def __init__(self, config: NetConfig):
        super().__init__()
        self.q = nn.Linear(config.d_model, config.d_model)
        self.kv = nn.Linear(config.d_model, 2 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.n_heads, self.head_dim = config.n_heads, config.head_dim
        self.drop = nn.Dropout(config.dropout)

    def memory_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, s, _ = memory.shape
        k, v = self.kv(memory).view(b, s, 2, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return k, v

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor):
        q = split_heads(self.q(x), self.n_heads)
        return self.drop(self.out(merge_heads(attend(q, k, v, allowed))))


class FeedForward(nn.Module):
    def __init__(self, config: NetConfig):
        super().__init__()
        self.up = nn.Linear(config.d_model, config.d_ff)
        self.down = nn.Linear(config.d_ff, config.d_model)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.down(F.gelu(self.up(x))))


class EncoderBlock(nn.Module):
    def __init__(self, config: NetConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(config.d_model), nn.LayerNorm(config.d_model)
        self.attn, self.mlp = SelfAttention(config), FeedForward(config)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), allowed)[0]
        return x + self.mlp(self.ln2(x))


class DecoderBlock(nn.Module):
    def __init__(self, config: NetConfig):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(config.d_model) for _ in range(3))
        self.attn, self.cross, self.mlp = SelfAttention(config), CrossAttention(config), FeedForward(config)

    def forward(self, x, self_allowed, cross_k, cross_v, cross_allowed, past_k=None, past_v=None, append=None):
        y, k, v = self.attn(self.ln1(x), self_allowed, past_k, past_v, append)
        x = x + y
        x = x + self.cross(self.ln2(x), cross_k, cross_v, cross_allowed)
        return x + self.mlp(self.ln3(x)), k, v


def bar_mask(query_bar: torch.Tensor, memory_bar: torch.Tensor, window: int) -> torch.Tensor:
    """(B,1,Tq,S) True where a query of bar b may see a memory token.

    memory_bar < 0 marks padding. With window >= 0 a query sees the memory of
    bars b-window..b+window plus memory token 0 (the source's BOS), so no row
    is ever fully masked.
    """
    valid = (memory_bar >= 0).unsqueeze(1)
    if window >= 0:
        near = (query_bar.unsqueeze(-1) - memory_bar.unsqueeze(1)).abs() <= window
        first = (torch.arange(memory_bar.shape[1], device=memory_bar.device) == 0).view(1, 1, -1)
        valid = valid & (near | first)
    return valid.unsqueeze(1)


class CompoundHeads(nn.Module):
    """The next token's type, then its fields given the type (compound-word style).

    Field logits for type t come from h + embed(t); `all_types` computes them
    for every type at once (what the exported decoder step returns), so the
    host can sample the type first and then read that type's field logits.
    """

    def __init__(self, config: NetConfig):
        super().__init__()
        self.ln = nn.LayerNorm(config.d_model)
        self.type_head = nn.Linear(config.d_model, N_TYPES)
        self.type_embed = nn.Embedding(N_TYPES, config.d_model)
        self.field_head = nn.Linear(config.d_model, sum(config.field_sizes[1:]))
        self.split = tuple(config.field_sizes[1:])

    def forward(self, h: torch.Tensor, types: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.ln(h)
        return self.type_head(h), self.field_head(h + self.type_embed(types))

    def all_types(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B,d) -> type logits (B,N_TYPES), field logits (B,N_TYPES,sum(field sizes[1:]))."""
        h = self.ln(h)
        fields = self.field_head(h.unsqueeze(1) + self.type_embed.weight.unsqueeze(0))
        return self.type_head(h), fields


def compound_nll(type_logits: torch.Tensor, field_logits: torch.Tensor, targets: torch.Tensor,
                 field_sizes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed negative log-likelihood of the target tokens and their count (PAD targets ignored).

    A token's NLL is its type's plus that of every field its type carries.
    """
    types = targets[..., 0]
    real = types != TokenType.PAD
    total = F.cross_entropy(type_logits[real], types[real], reduction="sum")
    pieces = torch.split(field_logits, tuple(field_sizes[1:]), dim=-1)
    for kind, fields in TYPE_FIELDS.items():
        rows = types == kind
        if not bool(rows.any()):
            continue
        for f in fields:
            total = total + F.cross_entropy(pieces[f - 1][rows], targets[..., f][rows], reduction="sum")
    return total, real.sum()


assert N_FIELDS == len(VOCAB.sizes)
