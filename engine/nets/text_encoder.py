"""Text encoders for MTM's text bridge (torch; exported to ONNX by exporters/text_export.py).

    BertEncoder  MiniLM / BERT: word + absolute position + token-type embeddings, post-LN blocks,
                 GELU feed-forward (all-MiniLM-L6-v2: 6 layers, 384 wide, 12 heads)
    T5Encoder    T5's encoder stack: relative position bias (computed in block 0, shared by all
                 blocks), pre-RMSNorm, no attention scaling, relu or gated-gelu feed-forward

Both read a Hugging Face checkpoint as it is published: `config.json` plus `model.safetensors` (or
`pytorch_model.bin`), in a folder or a zip. Both map (input_ids, attention_mask) to token states
(B, T, D); `mean_pool` is the sentence vector (sentence-transformers' mean pooling, then unit length).
"""
from __future__ import annotations

import json
import math
import re
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CuesmithError
from .layers import merge_heads, split_heads

NEG = -1e9  # added to attention scores of padding


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"

    @property
    def dim(self) -> int:
        return self.hidden_size


@dataclass(frozen=True)
class T5Config:
    vocab_size: int = 32128
    d_model: int = 512
    d_kv: int = 64
    d_ff: int = 2048
    num_layers: int = 6
    num_heads: int = 8
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    layer_norm_epsilon: float = 1e-6
    feed_forward_proj: str = "relu"  # "relu", "gelu", "gated-gelu", "gated-relu"

    @property
    def dim(self) -> int:
        return self.d_model

    @property
    def gated(self) -> bool:
        return self.feed_forward_proj.startswith("gated-")


def config_from_json(raw: dict) -> Union[BertConfig, T5Config]:
    """A config.json (Hugging Face) -> BertConfig or T5Config; unknown fields are ignored."""
    kind = raw.get("model_type")
    cls = {"bert": BertConfig, "t5": T5Config}.get(kind)
    if cls is None:
        raise CuesmithError(f"text encoder model_type {kind!r} is not supported (bert or t5)")
    return cls(**{f.name: raw[f.name] for f in fields(cls) if f.name in raw})


def kind_of(config) -> str:
    return "bert" if isinstance(config, BertConfig) else "t5"


# -- BERT ---------------------------------------------------------------------------

class BertLayer(nn.Module):
    def __init__(self, c: BertConfig):
        super().__init__()
        d, self.heads = c.hidden_size, c.num_attention_heads
        self.query, self.key, self.value, self.attn_out = (nn.Linear(d, d) for _ in range(4))
        self.attn_norm = nn.LayerNorm(d, eps=c.layer_norm_eps)
        self.ff_in, self.ff_out = nn.Linear(d, c.intermediate_size), nn.Linear(c.intermediate_size, d)
        self.ff_norm = nn.LayerNorm(d, eps=c.layer_norm_eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = (split_heads(f(x), self.heads) for f in (self.query, self.key, self.value))
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]) + bias
        x = self.attn_norm(x + self.attn_out(merge_heads(scores.softmax(-1) @ v)))
        return self.ff_norm(x + self.ff_out(F.gelu(self.ff_in(x))))


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        c = self.config = config
        self.word = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.embed_norm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)
        self.layers = nn.ModuleList(BertLayer(c) for _ in range(c.num_hidden_layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word(input_ids) + self.position(positions)[None] + self.token_type.weight[0]
        x, bias = self.embed_norm(x), padding_bias(attention_mask)
        for layer in self.layers:
            x = layer(x, bias)
        return x


BERT_KEYS = [(r"^word\.", "embeddings.word_embeddings."), (r"^position\.", "embeddings.position_embeddings."),
             (r"^token_type\.", "embeddings.token_type_embeddings."), (r"^embed_norm\.", "embeddings.LayerNorm."),
             (r"\.query\.", ".attention.self.query."), (r"\.key\.", ".attention.self.key."),
             (r"\.value\.", ".attention.self.value."), (r"\.attn_out\.", ".attention.output.dense."),
             (r"\.attn_norm\.", ".attention.output.LayerNorm."), (r"\.ff_in\.", ".intermediate.dense."),
             (r"\.ff_out\.", ".output.dense."), (r"\.ff_norm\.", ".output.LayerNorm."),
             (r"^layers\.", "encoder.layer.")]


# -- T5 -----------------------------------------------------------------------------

class RMSNorm(nn.Module):
    """T5's layer norm: scale only, no mean subtraction, no bias."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(dim)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


class T5Layer(nn.Module):
    def __init__(self, c: T5Config):
        super().__init__()
        inner, self.heads, self.config = c.num_heads * c.d_kv, c.num_heads, c
        self.q, self.k, self.v = (nn.Linear(c.d_model, inner, bias=False) for _ in range(3))
        self.o = nn.Linear(inner, c.d_model, bias=False)
        self.attn_norm = RMSNorm(c.d_model, c.layer_norm_epsilon)
        if c.gated:
            self.wi_0, self.wi_1 = (nn.Linear(c.d_model, c.d_ff, bias=False) for _ in range(2))
        else:
            self.wi = nn.Linear(c.d_model, c.d_ff, bias=False)
        self.wo = nn.Linear(c.d_ff, c.d_model, bias=False)
        self.ff_norm = RMSNorm(c.d_model, c.layer_norm_epsilon)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.feed_forward_proj.endswith("relu"):
            return F.relu(x)
        return F.gelu(x, approximate="tanh" if self.config.gated else "none")  # gated-gelu is HF's gelu_new

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        h = self.attn_norm(x)
        q, k, v = (split_heads(f(h), self.heads) for f in (self.q, self.k, self.v))
        x = x + self.o(merge_heads((q @ k.transpose(-1, -2) + bias).softmax(-1) @ v))  # T5 does not scale
        h = self.ff_norm(x)
        inner = self.activation(self.wi_0(h)) * self.wi_1(h) if self.config.gated else self.activation(self.wi(h))
        return x + self.wo(inner)


def relative_bucket(relative: torch.Tensor, buckets: int, max_distance: int) -> torch.Tensor:
    """T5's bidirectional bucketing of key - query offsets: exact when small, logarithmic when large."""
    half = buckets // 2
    bucket = (relative > 0).long() * half
    distance = relative.abs()
    exact = half // 2
    far = exact + (torch.log(distance.float().clamp(min=1) / exact) / math.log(max_distance / exact)
                   * (half - exact)).long()
    far = torch.clamp(far, max=half - 1)
    return bucket + torch.where(distance < exact, distance, far)


class T5Encoder(nn.Module):
    def __init__(self, config: T5Config):
        super().__init__()
        c = self.config = config
        self.shared = nn.Embedding(c.vocab_size, c.d_model)
        self.relative_bias = nn.Embedding(c.relative_attention_num_buckets, c.num_heads)
        self.layers = nn.ModuleList(T5Layer(c) for _ in range(c.num_layers))
        self.final_norm = RMSNorm(c.d_model, c.layer_norm_epsilon)

    def position_bias(self, length: int, device) -> torch.Tensor:
        positions = torch.arange(length, device=device)
        buckets = relative_bucket(positions[None, :] - positions[:, None], self.config.relative_attention_num_buckets,
                                  self.config.relative_attention_max_distance)
        return self.relative_bias(buckets).permute(2, 0, 1)[None]  # (1, H, T, T)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.shared(input_ids)
        bias = self.position_bias(input_ids.shape[1], input_ids.device) + padding_bias(attention_mask)
        for layer in self.layers:
            x = layer(x, bias)
        return self.final_norm(x)


T5_KEYS = [(r"^shared\.", "shared."),
           (r"^relative_bias\.", "encoder.block.0.layer.0.SelfAttention.relative_attention_bias."),
           (r"^layers\.(\d+)\.(q|k|v|o)\.", r"encoder.block.\1.layer.0.SelfAttention.\2."),
           (r"^layers\.(\d+)\.attn_norm\.", r"encoder.block.\1.layer.0.layer_norm."),
           (r"^layers\.(\d+)\.(wi|wi_0|wi_1|wo)\.", r"encoder.block.\1.layer.1.DenseReluDense.\2."),
           (r"^layers\.(\d+)\.ff_norm\.", r"encoder.block.\1.layer.1.layer_norm."),
           (r"^final_norm\.", "encoder.final_layer_norm.")]
ALTERNATIVES = {"shared.weight": ("encoder.embed_tokens.weight",)}  # T5EncoderModel saves either
PREFIXES = ("", "bert.", "model.", "transformer.")  # BertForX / wrapped checkpoints


# -- shared ---------------------------------------------------------------------------

def padding_bias(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) 1/0 -> (B, 1, 1, T) additive score bias that hides padding keys."""
    return (1.0 - attention_mask.float())[:, None, None, :] * NEG


def mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of the token states over the mask, unit length (all-MiniLM-L6-v2's Pooling + Normalize)."""
    mask = attention_mask.float()[..., None]
    pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return F.normalize(pooled, dim=-1)


def hf_key(name: str, table: list[tuple[str, str]]) -> str:
    for pattern, replacement in table:
        name = re.sub(pattern, replacement, name)
    return name


def build(config) -> nn.Module:
    return BertEncoder(config) if isinstance(config, BertConfig) else T5Encoder(config)


def load_state(model: nn.Module, weights: dict[str, torch.Tensor], where: str) -> nn.Module:
    """Copy a Hugging Face state dict into `model`; a clear error names what is missing or mis-shaped."""
    table = BERT_KEYS if isinstance(model, BertEncoder) else T5_KEYS
    state, missing, wrong = {}, [], []
    for name, param in model.state_dict().items():
        wanted = hf_key(name, table)
        found = next((p + k for k in (wanted,) + ALTERNATIVES.get(wanted, ()) for p in PREFIXES
                      if p + k in weights), None)
        if found is None:
            missing.append(wanted)
        elif tuple(weights[found].shape) != tuple(param.shape):
            wrong.append(f"{found} {tuple(weights[found].shape)} != {tuple(param.shape)}")
        else:
            state[name] = weights[found].float()
    kind = kind_of(model.config)
    if missing:
        seen = ", ".join(sorted(weights)[:3])
        raise CuesmithError(f"not a {kind} state dict in the Hugging Face key format: missing {missing[0]!r}"
                            f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''} (it has {seen}, ...)",
                            where, hint="export from a Hugging Face BertModel/T5 checkpoint (config.json + weights)")
    if wrong:
        raise CuesmithError(f"{kind} weights do not fit config.json: {wrong[0]}", where)
    model.load_state_dict(state)
    return model.eval()


def checkpoint_files(path: Path):
    """name -> bytes of a checkpoint's files (config.json, weights, tokenizer.json), in a folder or a zip
    (the folder holding the zip's shallowest config.json); KeyError for a missing file."""
    if not zipfile.is_zipfile(path):
        def read(name: str) -> bytes:
            try:
                return (path / name).read_bytes()
            except (FileNotFoundError, NotADirectoryError):
                raise KeyError(name) from None
        return read
    archive = zipfile.ZipFile(path)
    configs = sorted((n for n in archive.namelist() if Path(n).name == "config.json"), key=lambda n: n.count("/"))
    root = str(Path(configs[0]).parent) + "/" if configs and "/" in configs[0] else ""
    return lambda name: archive.read(root + name)


def read_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor], bytes]:
    """config.json, the weights and the weight file's bytes (for its sha256) from a folder or a zip."""
    files = checkpoint_files(path)
    try:
        config = json.loads(files("config.json"))
    except KeyError:
        raise CuesmithError("no config.json in the text encoder checkpoint", path) from None
    for name, reader in (("model.safetensors", _safetensors), ("pytorch_model.bin", _torch_bin)):
        try:
            raw = files(name)
        except KeyError:
            continue
        return config, reader(raw), raw
    raise CuesmithError("no model.safetensors or pytorch_model.bin in the text encoder checkpoint", path)


def load(path: Path) -> nn.Module:
    """A checkpoint folder or zip -> its encoder in eval mode, weights loaded."""
    raw, weights, _ = read_checkpoint(Path(path))
    return load_state(build(config_from_json(raw)), weights, str(path))


def _safetensors(raw: bytes) -> dict[str, torch.Tensor]:
    from safetensors.torch import load as load_safetensors

    return load_safetensors(raw)


def _torch_bin(raw: bytes) -> dict[str, torch.Tensor]:
    import io

    return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
