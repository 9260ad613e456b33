"""The text bridge: the plan and the video analysis -> a music description, by template.

The words are those of the training captions (engine/pipelines/mtm/library.py writes them from
the music's own analysis): a tempo class, a mood word (music/mood.py's HarmonySet emotions),
the mode, and the tempo in BPM. The same attributes partition the library for target retrieval.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...music import mood
from ...video.tempo import MOTION_FULL_SCALE

FAST, SLOW = 120.0, 90.0  # BPM: at or above FAST is fast, below SLOW is slow


@dataclass(frozen=True)
class Attributes:
    tempo: str  # "fast" | "medium" | "slow"
    mood: str  # a HarmonySet emotion word (music/mood.py)

    def key(self) -> tuple[str, str]:
        return self.tempo, self.mood


def tempo_class(bpm: float) -> str:
    return "fast" if bpm >= FAST else "slow" if bpm < SLOW else "medium"


def caption(bpm: float, valence: float, arousal: float, mode: str) -> str:
    """One caption in the shared vocabulary (for the library and for the video)."""
    return (f"{tempo_class(bpm)} {mood.label(valence, arousal)} {mode} pop music, "
            f"{round(bpm)} bpm, piano and band")


def video_arousal(analysis) -> float:
    cuts_per_minute = 60.0 * len(analysis.cuts) / max(analysis.duration, 1e-6)
    motion = min(1.0, analysis.motion.mean / MOTION_FULL_SCALE)
    return float(min(1.0, 0.7 * motion + 0.3 * min(1.0, cuts_per_minute / 30.0)))


def describe(plan, analysis) -> tuple[str, Attributes]:
    """The description of the music this picture asks for, and its retrieval attributes."""
    from ...planning.controls import clip_valence

    bpm = plan.tempos[0].bpm
    valence, arousal = clip_valence(analysis), video_arousal(analysis)
    return caption(bpm, valence, arousal, plan.key.mode), Attributes(tempo_class(bpm), mood.label(valence, arousal))
