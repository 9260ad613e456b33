"""Genre and music-video type: from the user's tags when they name one, else a rule-based guess.

The MV types are seed 004's ten categories. The genre guess scores a few
prototypes (tempo, arousal, percussive share) with a Gaussian distance and a
softmax; its confidence is that softmax, not a trained classifier's (there is no
labelled genre data offline). Tags that name neither stay as hints for the prose.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

MV_TYPES = ("Live Performance", "Lyric Video", "Animation", "Story Narrative", "Artistic/Abstract",
            "Dance Performance", "Behind-the-Scenes", "Nature/Scenic", "Static/Dynamic Picture Montage",
            "Cinematic Drama")
# genre: (tempo BPM, tempo width, arousal, percussive share)
GENRES = {
    "ballad": (72, 14, 0.30, 0.15),
    "pop": (105, 18, 0.55, 0.30),
    "dance/electronic": (124, 10, 0.80, 0.45),
    "rock": (130, 25, 0.80, 0.40),
    "hip-hop": (90, 10, 0.60, 0.50),
    "folk/acoustic": (95, 20, 0.40, 0.20),
    "ambient": (70, 25, 0.15, 0.05),
}
GENRE_WORDS = {"ballad": "ballad", "pop": "pop", "dance": "dance/electronic", "edm": "dance/electronic",
               "electronic": "dance/electronic", "house": "dance/electronic", "techno": "dance/electronic",
               "rock": "rock", "metal": "rock", "punk": "rock", "hip-hop": "hip-hop", "hiphop": "hip-hop",
               "rap": "hip-hop", "folk": "folk/acoustic", "acoustic": "folk/acoustic", "ambient": "ambient",
               "jazz": "jazz", "classical": "classical", "r&b": "r&b", "soul": "r&b", "country": "country",
               "mandopop": "pop", "c-pop": "pop", "k-pop": "pop", "j-pop": "pop"}


@dataclass
class TagReading:
    genre: str = ""
    mv_type: str = ""
    other: list[str] = field(default_factory=list)


def normalise(text: str) -> str:
    return re.sub(r"[^a-z0-9&]+", "", text.lower())


def read_tags(tags) -> TagReading:
    """`tags`: "ballad, story narrative" or a list; "genre: x" / "mv: y" prefixes are allowed."""
    items = tags if isinstance(tags, (list, tuple)) else re.split(r"[,;\n]", tags or "")
    reading = TagReading()
    mv_types = {normalise(t): t for t in MV_TYPES} | {normalise(t.split("/")[0]): t for t in MV_TYPES}
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        value = item.split(":", 1)[1].strip() if re.match(r"^(genre|mv|mv type|type)\s*:", item, re.I) else item
        key = normalise(value)
        if key in mv_types and not reading.mv_type:
            reading.mv_type = mv_types[key]
        elif value.lower() in GENRE_WORDS and not reading.genre:
            reading.genre = GENRE_WORDS[value.lower()]
        elif key in {normalise(w) for w in GENRE_WORDS} and not reading.genre:
            reading.genre = next(g for w, g in GENRE_WORDS.items() if normalise(w) == key)
        else:
            reading.other.append(item)
    return reading


def guess_genre(tempo, arousal: float, percussive: float) -> tuple[str, float]:
    """(genre, confidence 0..1) from the prototypes in GENRES."""
    names = list(GENRES)
    bpm = tempo or 90.0
    scores = []
    for name in names:
        centre, width, a, p = GENRES[name]
        # half/double-time readings of the tempo count as the same tempo
        t = min(abs(np.log2(bpm * f / centre)) for f in (0.5, 1.0, 2.0)) / np.log2(1 + width / centre)
        scores.append(-0.5 * (t ** 2 + ((arousal - a) / 0.15) ** 2 + ((percussive - p) / 0.15) ** 2))
    weights = np.exp(np.array(scores) - max(scores))
    best = int(np.argmax(weights))
    return names[best], round(float(weights[best] / weights.sum()), 2)


def guess_mv_type(arousal: float, percussive: float, has_lyrics: bool, themes: list[str]) -> tuple[str, str]:
    """(MV type, why) when the tags name none."""
    if has_lyrics and set(themes) & {"love", "heartbreak", "memory and time", "journey and freedom"}:
        return "Story Narrative", f"the lyrics are about {', '.join(themes[:2])}"
    if arousal >= 0.65 and percussive >= 0.3:
        return "Dance Performance", "high arousal with a strong percussive pulse"
    if arousal >= 0.6:
        return "Live Performance", "high arousal"
    if has_lyrics:
        return "Lyric Video", "lyrics without a clear story"
    if arousal < 0.35:
        return "Nature/Scenic", "low arousal, no lyrics"
    return "Artistic/Abstract", "moderate arousal, no lyrics"


def visual_style(valence: float, arousal: float, mode, genre: str) -> str:
    palette = ("warm golden light, saturated colour" if valence >= 0.6 else
               "soft natural light, pastel colour" if valence >= 0.45 else "cool blue-grey tones, low saturation")
    pace = ("long unhurried takes" if arousal < 0.35 else "measured cutting on the bar" if arousal < 0.6
            else "rhythmic cutting on the beat, high contrast")
    key_mood = "bittersweet, reflective framing" if mode == "minor" else "open, bright framing"
    return f"{palette}; {pace}; {key_mood} ({genre})"
