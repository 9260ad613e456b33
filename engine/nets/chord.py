"""Chord Transformer (seed 003, 4.2): a decoder over BAR/POSITION/CHORD tokens.

Its cross-attention reads a conditioning sequence: learned video features
when paired data trains them (`d_video` wide), else the all-zero 'no video'
condition. The per-bar controls (mode, section starts, ...) reach it through
the token context, so it is steered by the plan without paired data.
"""
from __future__ import annotations

from dataclasses import dataclass

from .layers import NetConfig
from .transformer import EventTransformer


@dataclass
class ChordConfig(NetConfig):
    stage: str = "chord"
    n_encoder_layers: int = 0
    bar_window: int = -1  # the video memory is not bar-aligned: attend to all of it


class ChordTransformer(EventTransformer):
    def __init__(self, config: ChordConfig | None = None):
        super().__init__(config or ChordConfig())
