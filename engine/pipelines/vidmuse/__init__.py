"""The VidMuse family (seed 001): video -> codec tokens -> audio on ONNX Runtime.

    pipeline.py  model folder, video features, sliding windows, codec (`VidMuse`, `load`)
    decode.py    one window's delay-pattern decode: KV cache, CFG with the null video, top-k
    delay.py     the delay pattern [0, 1, 2, 3] (interleave / deinterleave)
    features.py  the offline visual encoder's input: patch statistics on a 7 x 7 grid + a summary token
"""
from .pipeline import FAMILY, VidMuse, Windows, load

__all__ = ["FAMILY", "VidMuse", "Windows", "load"]
