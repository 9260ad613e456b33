"""The text encoders: a description -> tokens for the DiT's cross-attention, and one pooled vector.

    OnnxText    a learned encoder (BERT/MiniLM or T5, exported by exporters/text_export.py) in a text
                model folder: models/text/<name>/ (shipped: minilm-l6-v2, all-MiniLM-L6-v2), or
                $CUESMITH_MODELS/text/<name> / the user folder for one's own T5; tokenizers + ONNX Runtime
    HashedText  the first stand-in, kept for models trained with it: each lower-cased word a fixed
                pseudo-random unit vector (seeded by its CRC-32); it knows no synonyms

Both have the same interface (`name`, `dim`, `max_tokens`, `spec()`, `tokens`, `sentence`). The spec
is written to an MTM model's manifest and `text_encoder(spec)` gives the model the encoder it was
trained with.
"""
from __future__ import annotations

import re
import zlib
from functools import lru_cache
from typing import Optional, Union

import numpy as np

from ...errors import CuesmithError
from ...runtime.sessions import open_session
from ...runtime.store import ModelFolder, find_model

NAME = "hashed-bow-v1"
SHIPPED = "minilm-l6-v2"  # the default for new MTM models
WORD = re.compile(r"[a-z0-9]+")
TEXT_FAMILY = "text"


class HashedText:
    name = NAME

    def __init__(self, dim: int = 64, max_tokens: int = 32):
        self.dim, self.max_tokens = dim, max_tokens

    def spec(self) -> dict:
        """What the model's manifest records (pipeline.text_encoder reads it back)."""
        return {"name": self.name, "dim": self.dim, "max_tokens": self.max_tokens}

    def words(self, text: str) -> list[str]:
        return WORD.findall(text.lower())[:self.max_tokens]

    def word_vector(self, word: str) -> np.ndarray:
        v = np.random.default_rng(zlib.crc32(word.encode())).standard_normal(self.dim)
        return (v / np.linalg.norm(v)).astype(np.float32)

    def tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(max_tokens, dim) float32 token vectors and a (max_tokens,) 0/1 mask; padding is zeros."""
        tokens = np.zeros((self.max_tokens, self.dim), np.float32)
        mask = np.zeros(self.max_tokens, np.float32)
        for i, word in enumerate(self.words(text)):
            tokens[i], mask[i] = self.word_vector(word), 1.0
        return tokens, mask

    def sentence(self, text: str) -> np.ndarray:
        """The pooled, unit-length vector (zeros for no words), for similarity search."""
        words = self.words(text)
        if not words:
            return np.zeros(self.dim, np.float32)
        v = np.sum([self.word_vector(w) for w in set(words)], axis=0)
        return (v / np.linalg.norm(v)).astype(np.float32)


class OnnxText:
    """A text model folder (manifest.json, tokenizer.json, its graph): token states and their mean, pooled
    over the real tokens and unit length (as sentence-transformers pools all-MiniLM-L6-v2)."""

    def __init__(self, model: ModelFolder, max_tokens: Optional[int] = None, threads: int = 1):
        from tokenizers import Tokenizer

        manifest = model.manifest
        self.name, self.kind, self.dim = manifest["name"], manifest["kind"], int(manifest["dim"])
        self.max_tokens = int(max_tokens or manifest["max_tokens"])
        self.tokenizer = Tokenizer.from_file(str(model.path / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(int(manifest["max_tokens"]))
        self.session = open_session(model.path / manifest["graph"], threads)
        self.states = lru_cache(maxsize=4096)(self._states)

    def spec(self) -> dict:
        return {"name": self.name, "kind": self.kind, "dim": self.dim, "max_tokens": self.max_tokens}

    def _states(self, text: str) -> np.ndarray:
        """(n, dim) token states of `text`, n its tokens (the tokenizer's start/end tokens included)."""
        ids = np.array([self.tokenizer.encode(text).ids], np.int64)
        return self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0][0]

    def tokens(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(max_tokens, dim) float32 token states and a (max_tokens,) 0/1 mask; padding is zeros."""
        states = self.states(text)[:self.max_tokens]
        tokens = np.zeros((self.max_tokens, self.dim), np.float32)
        mask = np.zeros(self.max_tokens, np.float32)
        tokens[:len(states)], mask[:len(states)] = states, 1.0
        return tokens, mask

    def sentence(self, text: str) -> np.ndarray:
        v = self.states(text).mean(axis=0)
        return (v / max(float(np.linalg.norm(v)), 1e-9)).astype(np.float32)


TextEncoder = Union[HashedText, OnnxText]


def text_encoder(spec: dict, threads: int = 1) -> TextEncoder:
    """The encoder a spec names: hashed-bow-v1, or the text model folder `text/<name>` (model store order)."""
    name = spec.get("name")
    if name == NAME:
        return HashedText(spec["dim"], spec["max_tokens"])
    if not name:
        raise CuesmithError("the model's manifest names no text encoder")
    encoder = OnnxText(find_model(f"{TEXT_FAMILY}/{name}"), spec.get("max_tokens"), threads)
    if "dim" in spec and int(spec["dim"]) != encoder.dim:
        raise CuesmithError(f"text encoder {name!r} gives {encoder.dim}-wide tokens; the model wants {spec['dim']}",
                            hint="export the text encoder the model was trained with")
    return encoder


def named(name: str, max_tokens: int, dim: int = 64) -> TextEncoder:
    """A training run's encoder by name (`dim` only for the hashed one, whose width is free)."""
    return HashedText(dim, max_tokens) if name == NAME else text_encoder({"name": name, "max_tokens": max_tokens})
