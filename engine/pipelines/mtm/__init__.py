"""The MTM family (seed 002): text and music bridges into a latent DiT with a ControlFormer.

    describe.py  the text bridge: plan + video analysis -> a music description (template)
    text.py      the text encoder (hashed bag of words, a stand-in for T5)
    library.py   the music bridge: library index, broad and target retrieval
    sampler.py   DPM-Solver++ 2M with classifier-free guidance, in numpy
    pipeline.py  the family over one model folder (`MTM`, `load`): plan -> Music (audio)
The nets (torch) are in engine/nets/mtm.py, their export in exporters/mtm_export.py.
"""
from .pipeline import FAMILY, MTM, load

__all__ = ["FAMILY", "MTM", "load"]
