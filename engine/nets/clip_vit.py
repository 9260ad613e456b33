"""CLIP ViT-B/32's vision tower, for VidMuse's visual encoder slot: (B, 3, 224, 224) -> last hidden state (B, 50, 768).

No CLIP weights ship with cuesmith: `load_vision_state` reads a checkpoint the user supplies, in
Hugging Face's key format (`vision_model.embeddings.patch_embedding.weight`, ...; a whole CLIPModel's
text keys are ignored), from `.safetensors` (read here, no extra library) or a torch `.bin`/`.pt`
state dict. `exporters/clip_export.py` converts it to ONNX. The last hidden state is the encoder's
output before `post_layernorm`, as the reference takes it. Activation: quick GELU (OpenAI's CLIP).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

MEAN = (0.48145466, 0.4578275, 0.40821073)  # CLIP's pixel normalisation
STD = (0.26862954, 0.26130258, 0.27577711)
PREFIX = "vision_model."
PROJECTIONS = ("q_proj", "k_proj", "v_proj")


@dataclass(frozen=True)
class ClipVisionConfig:
    image_size: int = 224
    patch_size: int = 32
    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp: int = 3072

    @property
    def tokens(self) -> int:
        return 1 + (self.image_size // self.patch_size) ** 2


VIT_B_32 = ClipVisionConfig()


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ClipLayer(nn.Module):
    def __init__(self, c: ClipVisionConfig):
        super().__init__()
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(c.width, eps=1e-5), nn.LayerNorm(c.width, eps=1e-5)
        self.self_attn = nn.ModuleDict({n: nn.Linear(c.width, c.width) for n in PROJECTIONS + ("out_proj",)})
        self.mlp = nn.ModuleDict({"fc1": nn.Linear(c.width, c.mlp), "fc2": nn.Linear(c.mlp, c.width)})
        self.act, self.heads = QuickGELU(), c.heads

    def attention(self, x):
        b, t, d = x.shape
        q, k, v = (self.self_attn[n](x).view(b, t, self.heads, -1).transpose(1, 2) for n in PROJECTIONS)
        weights = torch.softmax(q @ k.transpose(-1, -2) / (d // self.heads) ** 0.5, dim=-1)
        return self.self_attn["out_proj"]((weights @ v).transpose(1, 2).reshape(b, t, d))

    def forward(self, x):
        x = x + self.attention(self.layer_norm1(x))
        return x + self.mlp["fc2"](self.act(self.mlp["fc1"](self.layer_norm2(x))))


class ClipVision(nn.Module):
    """Parameter names follow Hugging Face's CLIPVisionModel without the `vision_model.` prefix."""

    def __init__(self, c: ClipVisionConfig = VIT_B_32):
        super().__init__()
        self.config = c
        self.embeddings = nn.Module()
        self.embeddings.class_embedding = nn.Parameter(torch.zeros(c.width))
        self.embeddings.patch_embedding = nn.Conv2d(3, c.width, c.patch_size, c.patch_size, bias=False)
        self.embeddings.position_embedding = nn.Embedding(c.tokens, c.width)
        self.pre_layrnorm = nn.LayerNorm(c.width, eps=1e-5)  # sic: Hugging Face's name
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList(ClipLayer(c) for _ in range(c.layers))
        self.post_layernorm = nn.LayerNorm(c.width, eps=1e-5)  # kept for the key format; not in the hidden state

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, 50, width) last hidden state."""
        patches = self.embeddings.patch_embedding(pixels).flatten(2).transpose(1, 2)
        cls = self.embeddings.class_embedding.expand(pixels.shape[0], 1, -1)
        x = torch.cat([cls, patches], dim=1) + self.embeddings.position_embedding.weight
        x = self.pre_layrnorm(x)
        for layer in self.encoder.layers:
            x = layer(x)
        return x


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A .safetensors file's tensors (8-byte header length, JSON header, raw little-endian data)."""
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "BF16": None}
    raw = Path(path).read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    data, tensors = memoryview(raw)[8 + length:], {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        if entry["dtype"] == "BF16":
            words = np.frombuffer(data[start:end], np.uint16).astype(np.uint32) << 16
            values = words.view(np.float32)
        elif entry["dtype"] in dtypes:
            values = np.frombuffer(data[start:end], dtypes[entry["dtype"]])
        else:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {entry['dtype']}")
        tensors[name] = torch.from_numpy(values.astype(np.float32 if values.dtype.kind == "f" else values.dtype)
                                         .reshape(entry["shape"]).copy())
    return tensors


def write_safetensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    """float32 tensors -> .safetensors (the tests' stand-in for a user's checkpoint file)."""
    header, blobs, offset = {}, [], 0
    for name, tensor in tensors.items():
        blob = tensor.detach().to(torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def config_of(state: dict[str, torch.Tensor]) -> ClipVisionConfig:
    """The tower's sizes, read off its weights."""
    patch = state["embeddings.patch_embedding.weight"]
    tokens = state["embeddings.position_embedding.weight"].shape[0]
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layers."))
    grid = int(round((tokens - 1) ** 0.5))
    width = patch.shape[0]
    return ClipVisionConfig(image_size=grid * patch.shape[-1], patch_size=patch.shape[-1], width=width, layers=layers,
                            heads=max(1, width // 64), mlp=state["encoder.layers.0.mlp.fc1.weight"].shape[0])


def load_vision_state(path: Path) -> ClipVision:
    """The vision tower of a user's CLIP checkpoint (Hugging Face key format)."""
    path = Path(path)
    state = read_safetensors(path) if path.suffix == ".safetensors" else torch.load(path, map_location="cpu")
    vision = {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)}
    vision.pop("embeddings.position_ids", None)
    if "embeddings.patch_embedding.weight" not in vision:
        raise ValueError(f"{path}: no '{PREFIX}embeddings.patch_embedding.weight': not a CLIP checkpoint in "
                         "Hugging Face's key format")
    net = ClipVision(config_of(vision))
    net.load_state_dict(vision, strict=True)
    return net.eval()
