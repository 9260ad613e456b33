"""The text bridge: the plan and the video analysis -> a music description, by template.

The words are those of the training captions (engine/pipelines/mtm/library.py writes them from
the music's annotations and its own analysis): a tempo class, a mood word (music/mood.py's
HarmonySet emotions), the mode, the tempo in BPM and the instruments. The same attributes
partition the library for target retrieval; `attributes_of` reads them back out of a user's text.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from ...music import mood
from ...video.tempo import MOTION_FULL_SCALE

FAST, SLOW = 120.0, 90.0  # BPM: at or above FAST is fast, below SLOW is slow
TEMPO_WORDS = ("fast", "medium", "slow")
MOOD_WORDS = ("relax", "hope", "happy", "surprise", "sad", "anxious", "angry", "fear")  # mood.label's words
DEFAULT_INSTRUMENTS = "piano and band"  # what the text bridge asks for: the picture names no instrument
# General MIDI programs the corpus plays (engine/corpus/audio.py) -> caption words
INSTRUMENT_WORDS = {0: "piano", 1: "piano", 4: "electric piano", 11: "vibraphone", 16: "organ", 24: "guitar",
                    25: "guitar", 40: "violin", 46: "harp", 48: "strings", 56: "trumpet", 65: "saxophone",
                    73: "flute", 80: "synth lead", 88: "synth pad"}
BPM_WORDS = re.compile(r"(\d{2,3})\s*bpm")


@dataclass(frozen=True)
class Attributes:
    tempo: str  # "fast" | "medium" | "slow"
    mood: str  # a HarmonySet emotion word (music/mood.py)

    def key(self) -> tuple[str, str]:
        return self.tempo, self.mood


def tempo_class(bpm: float) -> str:
    return "fast" if bpm >= FAST else "slow" if bpm < SLOW else "medium"


def caption(bpm: float, valence: float, arousal: float, mode: str, instruments: str = DEFAULT_INSTRUMENTS) -> str:
    """One caption in the shared vocabulary (for the library and for the video)."""
    return (f"{tempo_class(bpm)} {mood.label(valence, arousal)} {mode} pop music, "
            f"{round(bpm)} bpm, {instruments}")


def instruments(programs: list[int]) -> str:
    """Caption words for General MIDI programs, in order, each once ("flute and strings")."""
    words = list(dict.fromkeys(INSTRUMENT_WORDS.get(p, "piano") for p in programs))
    return " and ".join(words)


def attributes_of(text: str, fallback: Optional[Attributes] = None) -> Optional[Attributes]:
    """The retrieval partition a description names: its tempo word (or BPM) and mood word; what it leaves
    out comes from `fallback` (the video's), and None when neither says."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    tempo = next((w for w in TEMPO_WORDS if w in words), None)
    bpm = BPM_WORDS.search(text.lower())
    tempo = tempo or (tempo_class(float(bpm.group(1))) if bpm else None) or (fallback.tempo if fallback else None)
    feeling = next((w for w in MOOD_WORDS if w in words), None) or (fallback.mood if fallback else None)
    return Attributes(tempo, feeling) if tempo and feeling else None


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
