"""The V-MusProd family: chord -> melody -> accompaniment transformers on ONNX Runtime.

    pipeline.py  the three stages over one model folder (`VMusProd`, `load`), plan -> Music (Songs)
    decode.py    the constrained KV-cache decode loop of one stage
    segments.py  its cache and memory bounded per segment (long cues)
"""
from .pipeline import FAMILY, STAGES, VMusProd, bar_plan, load

__all__ = ["FAMILY", "STAGES", "VMusProd", "bar_plan", "load"]
