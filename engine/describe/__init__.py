"""Music → music-video description (seed 004): an overview, a breakdown every 2 s, and cut points on beats.

    from cuesmith.engine.describe import describe
    description = describe("song.mid", lyrics="song.lrc", tags="ballad, story narrative")
    description.save("out/")   # description.json + description.md + cuts.otio + cuts.edl
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..progress import Progress
from ..progress import report as report_progress
from .analysis import MusicAnalysis, Section, analyze_music
from .describe import SCHEMA, SCHEMA_VERSION, WINDOW_S, Cut, Description, Overview, Window, describe_analysis
from .prose import apply_llm, check_description
from .report import DescriptionFiles, markdown, write_description

__all__ = ["describe", "Description", "DescriptionFiles", "MusicAnalysis", "Section", "Overview", "Window", "Cut",
           "SCHEMA", "SCHEMA_VERSION", "WINDOW_S", "analyze_music", "check_description", "markdown",
           "write_description", "apply_llm"]


def describe(music, lyrics: Optional[str | Path] = None, tags=None, llm: Optional[str | Path] = None,
             progress: Optional[Progress] = None) -> Description:
    """Analyse `music` (MIDI, audio or a Song) and describe a music video for it; nothing is written.
    Bad music or lyrics raise a CuesmithError before any work is kept."""
    from .lyrics import load_lyrics, read_lyrics

    if lyrics:
        read_lyrics(lyrics)  # a bad lyrics file fails before the (slower) music analysis
    analysis = analyze_music(music, progress)
    report_progress(progress, "describe", 0.2)
    description = describe_analysis(analysis, load_lyrics(lyrics, analysis.sections, analysis.duration), tags)
    if llm:
        report_progress(progress, "describe", 0.4)
        apply_llm(description, llm)
    report_progress(progress, "describe", 1.0)
    return description
