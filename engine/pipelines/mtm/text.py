"""The text encoder: a description -> tokens for the DiT's cross-attention, and one pooled vector.

A stand-in for T5 (Stable Audio Open's) until a sentence-embedding model runs here without torch:
hashed bag of words. Each lower-cased word maps to a fixed pseudo-random unit vector (seeded by its
CRC-32), so the same word always gives the same token and two descriptions sharing words have
similar pooled vectors. It knows no synonyms; that is the gap a learned encoder fills. The
`name` is written to the model's manifest so a model is only run with the encoder it was trained on.
"""
from __future__ import annotations

import re
import zlib

import numpy as np

NAME = "hashed-bow-v1"
WORD = re.compile(r"[a-z0-9]+")


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
