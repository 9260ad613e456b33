"""PyTorch nets (training and export only: the runtime path never imports this package)."""
from __future__ import annotations

from dataclasses import fields

from .accompaniment import AccompanimentConfig, AccompanimentTransformer
from .chord import ChordConfig, ChordTransformer
from .layers import CONTEXT_FIELDS, NetConfig
from .melody import MelodyConfig, MelodyTransformer
from .transformer import EventTransformer

STAGES = ("chord", "melody", "accompaniment")
NETS = {"chord": (ChordConfig, ChordTransformer), "melody": (MelodyConfig, MelodyTransformer),
        "accompaniment": (AccompanimentConfig, AccompanimentTransformer)}


def build_net(stage: str, **sizes) -> EventTransformer:
    """The net of `stage` with its config's defaults overridden by `sizes`."""
    config_cls, net_cls = NETS[stage]
    return net_cls(config_cls(**sizes))


def config_from_dict(stage: str, values: dict) -> NetConfig:
    config_cls = NETS[stage][0]
    known = {f.name for f in fields(config_cls)}
    kept = {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in known}
    return config_cls(**kept)
