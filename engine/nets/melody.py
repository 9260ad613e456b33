"""Melody Transformer (seed 003, 4.2): an encoder over the chord tokens, a decoder
over the melody tokens; each melody token sees the chords of the previous,
current and next bar only (bar-level cross-attention mask, `bar_window` = 1)."""
from __future__ import annotations

from dataclasses import dataclass

from .layers import NetConfig
from .transformer import EventTransformer


@dataclass
class MelodyConfig(NetConfig):
    stage: str = "melody"
    n_encoder_layers: int = 2
    bar_window: int = 1


class MelodyTransformer(EventTransformer):
    def __init__(self, config: MelodyConfig | None = None):
        super().__init__(config or MelodyConfig())
