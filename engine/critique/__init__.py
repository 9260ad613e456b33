"""The alignment critique in HarmonySet's four dimensions (seed 000).

    from cuesmith.engine.critique import assess
    critique = assess(video_analysis, "music.mid")    # or a Song, or any audio/video file
    write_critique(critique, "out/")                  # critique.json + critique.md
"""
from .assess import SCHEMA, SCHEMA_VERSION, Critique, Dimension, assess, rank_variations
from .music import MusicFacts, music_facts
from .prose import apply_llm
from .report import markdown, write_critique

__all__ = ["assess", "rank_variations", "Critique", "Dimension", "MusicFacts", "music_facts", "apply_llm", "write_critique",
           "markdown", "SCHEMA", "SCHEMA_VERSION"]
