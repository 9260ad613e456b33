"""`assess(video_analysis, music)`: the critique in HarmonySet's four dimensions.

Rhythm & synchronization: key moments graded A/B/C (moments.py); music pace
from the beat tempo (slow < `SLOW_BPM`, fast ≥ `FAST_BPM`, diverse when the
beat intervals spread by more than `DIVERSE_SPREAD`); picture pace from the
mean shot length and motion; pace fit 1 (same), 0.5 (neighbours or diverse
music), 0 (slow against fast). Score = 1 + 9·(0.8·sync + 0.2·pace fit), sync
being the weighted credit of the grades (A 1, B 0.4, C 0; motion peaks weigh
half). Rhythm alignment: "irrelevant" when the music has no changes to align;
"precise" when at least `PRECISE_SHARE` of the cuts and transitions are A;
"appropriate" when sync ≥ 0.4 and the pace fits at least half; "mismatch"
when the pace is opposite or sync < 0.15; else "irrelevant".
Emotion: emotion.py. Theme & content, culture: evidence.py ("not assessed"
without evidence; then the dimension has no score).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..music.score import Song
from . import emotion, evidence, moments
from .music import MusicFacts, music_facts

SCHEMA = "cuesmith.critique"
SCHEMA_VERSION = 1
SLOW_BPM, FAST_BPM = 85.0, 120.0
DIVERSE_SPREAD = 0.15
PRECISE_SHARE = 0.6
SHORT_MUSIC_S = 1.0  # music ending this much before the picture is reported
PACES = ("slow", "medium", "fast")


@dataclass
class Dimension:
    name: str
    assessed: bool
    score: Optional[float]  # 1..10; None when not assessed
    labels: dict[str, str]
    facts: list[str]


@dataclass
class Critique:
    schema: str
    version: int
    video: str
    music: str
    music_kind: str
    duration: float
    fps: float
    key_moments: list[moments.KeyMoment]
    harmonyset_key_moments: str  # "00:10,A; 00:20,B"
    dimensions: list[Dimension]
    overall: Optional[float]
    measurements: dict
    evidence: dict
    problems: list[str] = field(default_factory=list)
    prose: dict[str, str] = field(default_factory=dict)  # dimension name -> paragraph
    prose_source: str = "template"  # "template" | "llm"
    prose_note: str = ""  # why the template was used when an LLM was asked for

    def dimension(self, name: str) -> Dimension:
        return next(d for d in self.dimensions if d.name == name)

    @property
    def rhythm_score(self) -> float:
        return self.dimension("rhythm").score

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Critique":
        """A critique read back from critique.json (`to_dict`'s output)."""
        names = {f.name for f in fields(cls)}
        kept = {k: v for k, v in values.items() if k in names}
        kept["key_moments"] = [moments.KeyMoment(**m) for m in values.get("key_moments", [])]
        kept["dimensions"] = [Dimension(**d) for d in values.get("dimensions", [])]
        return cls(**kept)


def assess(video_analysis, music: Union[str, Path, Song, MusicFacts], notes: str = "",
           markers: Optional[list[str]] = None) -> Critique:
    """Critique `music` (a MIDI/audio path, a Song, or MusicFacts) against the analysed clip."""
    facts = music if isinstance(music, MusicFacts) else music_facts(music)
    problems = list(facts.problems)
    if facts.duration < video_analysis.duration - SHORT_MUSIC_S:
        problems.append(f"the music lasts {facts.duration:.1f} s and the clip {video_analysis.duration:.1f} s: "
                        f"moments after {moments.clock(facts.duration)} are graded C")
    graded = moments.grade_moments(video_analysis, facts)
    ev = evidence.gather(video_analysis.info.path, notes, markers or [], facts.title, facts.tags,
                         facts.source if facts.source != "song" else "")
    dims = [rhythm_dimension(video_analysis, facts, graded), emotion_dimension(video_analysis, facts),
            theme_dimension(ev), culture_dimension(ev)]
    scored = [d.score for d in dims if d.score is not None]
    critique = Critique(
        SCHEMA, SCHEMA_VERSION, video_analysis.info.path, facts.source, facts.kind,
        video_analysis.duration, video_analysis.fps, graded, moments.harmonyset_line(graded), dims,
        round(float(np.mean(scored)), 1) if scored else None, measurements(video_analysis, facts),
        ev.to_dict(), problems)
    from .prose import template_prose

    critique.prose = template_prose(critique)
    return critique


# -- rhythm ----------------------------------------------------------------------

def music_pace(facts: MusicFacts) -> Optional[str]:
    if facts.tempo is None:
        return None
    if facts.tempo_spread > DIVERSE_SPREAD:
        return "diverse"
    return "slow" if facts.tempo < SLOW_BPM else "fast" if facts.tempo >= FAST_BPM else "medium"


def picture_pace(analysis) -> str:
    from ..video.tempo import MOTION_FULL_SCALE

    shot = analysis.duration / (len(analysis.cuts) + 1)
    motion = analysis.motion.mean / MOTION_FULL_SCALE
    if shot < 2.0 or motion > 0.6:
        return "fast"
    if shot > 6.0 and motion < 0.25:
        return "slow"
    return "medium"


def pace_fit(music: Optional[str], picture: str) -> Optional[float]:
    if music is None:
        return None
    if music == "diverse":
        return 0.5
    gap = abs(PACES.index(music) - PACES.index(picture))
    return {0: 1.0, 1: 0.5}.get(gap, 0.0)


def rhythm_dimension(analysis, facts: MusicFacts, graded: list[moments.KeyMoment]) -> Dimension:
    m_pace, p_pace = music_pace(facts), picture_pace(analysis)
    fit = pace_fit(m_pace, p_pace)
    sync = moments.sync_credit(graded)
    edits = [m for m in graded if m.kind != "motion peak"]
    share_a = sum(m.grade == "A" for m in edits) / len(edits) if edits else 0.0
    counts = {g: sum(m.grade == g for m in graded) for g in "ABC"}
    facts_ = [f"{len(graded)} key moments: {counts['A']} A, {counts['B']} B, {counts['C']} C "
              f"(A within one frame, 1/{analysis.fps:g} s; B within {moments.B_WINDOW_S:g} s)",
              f"music tempo {facts.tempo:.1f} BPM" if facts.tempo else "no musical beat found",
              f"picture: {len(analysis.cuts)} cuts in {analysis.duration:.1f} s, motion {analysis.motion.mean:.3f}"]
    if not facts.changes:
        alignment, score = "irrelevant", 1.0
    else:
        alignment = rhythm_label(sync, share_a, fit, bool(edits))
        parts = [(0.8, sync), (0.2, fit)]
        parts = [(w, v) for w, v in parts if v is not None]
        score = 1.0 + 9.0 * sum(w * v for w, v in parts) / sum(w for w, _ in parts) if parts else None
    labels = {"music pace": m_pace or "not assessed", "picture pace": p_pace, "rhythm alignment": alignment}
    return Dimension("rhythm", score is not None, None if score is None else round(score, 2), labels, facts_)


def rhythm_label(sync: Optional[float], share_a: float, fit: Optional[float], has_edits: bool) -> str:
    if has_edits and share_a >= PRECISE_SHARE:
        return "precise"
    if fit == 0.0 or (sync is not None and sync < 0.15):
        return "mismatch"
    if (sync is None or sync >= 0.4) and (fit is None or fit >= 0.5):
        return "appropriate"
    return "irrelevant"


# -- emotion -----------------------------------------------------------------------

def emotion_dimension(analysis, facts: MusicFacts) -> Dimension:
    picture = emotion.video_affect(analysis)
    shots = emotion.shot_labels(analysis)
    if facts.kind == "audio" and facts.brightness is None:  # silent audio
        return Dimension("emotion", False, None, {"video emotions": picture.label, "emotion alignment": "not assessed",
                                                  "emotional richness": "not assessed"},
                         ["the music is silent: no mode, tempo or loudness to judge"])
    music = emotion.music_affect(facts)
    verdict, score = emotion.alignment(picture, music)
    labels = {"video emotions": ", ".join(dict.fromkeys(shots or [picture.label])),
              "music emotion": music.label, "emotion alignment": verdict,
              "emotional richness": emotion.richness(shots, facts, [c.time for c in analysis.cuts])}
    facts_ = [f"picture valence {picture.valence:.2f}, arousal {picture.arousal:.2f} ({picture.label})",
              f"music valence {music.valence:.2f}, arousal {music.arousal:.2f} ({music.label}; "
              f"{facts.mode or 'unknown'} mode, {facts.tempo or 0:.0f} BPM)"]
    return Dimension("emotion", True, score, labels, facts_)


# -- theme and culture ------------------------------------------------------------

def theme_dimension(ev: evidence.Evidence) -> Dimension:
    verdict, labels, facts_ = evidence.theme_judgement(ev)
    score = None if verdict is None else (8.0 if verdict == "strongly related" else 3.0)
    return Dimension("theme", verdict is not None, score, labels, facts_)


def culture_dimension(ev: evidence.Evidence) -> Dimension:
    verdict, labels, facts_ = evidence.culture_judgement(ev)
    score = None if verdict is None else (8.0 if verdict == "related" else 4.0)
    return Dimension("culture", verdict is not None, score, labels, facts_)


def measurements(analysis, facts: MusicFacts) -> dict:
    return {"video": {"duration": analysis.duration, "fps": analysis.fps,
                      "cuts": [round(c.time, 3) for c in analysis.cuts],
                      "transitions": [[round(t.start, 3), round(t.end, 3), t.kind] for t in analysis.transitions],
                      "motion_mean": analysis.motion.mean, "brightness": analysis.colour.mean_brightness,
                      "saturation": analysis.colour.mean_saturation, "warmth": analysis.colour.mean_warmth},
            "music": facts.to_dict()}
