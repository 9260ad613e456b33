"""Accompaniment Transformer (seed 003, 4.2): an encoder over the chords merged with
the melody ("chord+melody" tokens), a decoder over the accompaniment tokens,
with the same bar-level cross-attention mask as the melody net."""
from __future__ import annotations

from dataclasses import dataclass

from .layers import NetConfig
from .transformer import EventTransformer


@dataclass
class AccompanimentConfig(NetConfig):
    stage: str = "accompaniment"
    n_encoder_layers: int = 2
    bar_window: int = 1


class AccompanimentTransformer(EventTransformer):
    def __init__(self, config: AccompanimentConfig | None = None):
        super().__init__(config or AccompanimentConfig())
