"""`assess(video_analysis, music)`: the critique in HarmonySet's four dimensions, and soundness facts.

Rhythm & synchronization combines three measurements:
- agreement (weight 0.6): the key moments' A/B/C grades (moments.py) against
  the music's changes (novelty peaks on the beat grid, changes.py), as credit
  above what moments at random times would get (`moments.agreement`), so busy
  music earns nothing by being busy;
- beat phase (0.2): for each cut and transition inside the music, cos(2π·d)
  with d its distance to the nearest heard beat in beats, averaged and clipped
  to 0..1 (1: on the beat; 0: half a beat off, or no pulse heard);
- pace fit (0.2): music pace from the beat tempo (slow < `SLOW_BPM`, fast ≥
  `FAST_BPM`, diverse when the beat intervals spread by more than
  `DIVERSE_SPREAD`), picture pace from the mean shot length and motion; fit 1
  (same), 0.5 (neighbours or diverse music), 0 (slow against fast, or no pulse
  heard in the music).
Score = 1 + 9·(weighted mean of those measured). Rhythm alignment: "irrelevant"
when the music has no changes to align; "precise" when at least
`PRECISE_SHARE` of the cuts and transitions are A and agreement ≥ 0.5;
"mismatch" when the pace is opposite or agreement < `MISMATCH_AGREEMENT`;
"appropriate" when agreement ≥ 0.4 and the pace fits at least half; else "irrelevant".
Emotion: emotion.py. Theme & content, culture: evidence.py ("not assessed"
without evidence; then the dimension has no score). Soundness (is it music?):
soundness.py, reported beside the four dimensions and used to rank variations
(`rank_variations`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..music.score import Song
from . import emotion, evidence, moments
from .changes import beat_positions
from .music import MusicFacts, music_facts

SCHEMA = "cuesmith.critique"
SCHEMA_VERSION = 1
SLOW_BPM, FAST_BPM = 85.0, 120.0
DIVERSE_SPREAD = 0.15
PRECISE_SHARE = 0.6
MISMATCH_AGREEMENT = 0.15
WEIGHTS = {"agreement": 0.6, "beat phase": 0.2, "pace fit": 0.2}
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
    soundness: dict = field(default_factory=dict)  # soundness.Soundness as a dict, with "verdict"

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
    if facts.soundness is not None and facts.soundness.flagged:
        problems.append(f"the music {facts.soundness.verdict}: " + "; ".join(facts.soundness.out))
    critique = Critique(
        SCHEMA, SCHEMA_VERSION, video_analysis.info.path, facts.source, facts.kind,
        video_analysis.duration, video_analysis.fps, graded, moments.harmonyset_line(graded), dims,
        round(float(np.mean(scored)), 1) if scored else None, measurements(video_analysis, facts),
        ev.to_dict(), problems, soundness=soundness_dict(facts))
    from .prose import template_prose

    critique.prose = template_prose(critique)
    return critique


# -- rhythm ----------------------------------------------------------------------

def music_pace(facts: MusicFacts) -> Optional[str]:
    if facts.tempo is None or not facts.pulse_heard:
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


def pace_fit(music: Optional[str], picture: str, pulse_heard: bool = True) -> Optional[float]:
    if not pulse_heard:
        return 0.0
    if music is None:
        return None
    if music == "diverse":
        return 0.5
    gap = abs(PACES.index(music) - PACES.index(picture))
    return {0: 1.0, 1: 0.5}.get(gap, 0.0)


def edit_times(analysis) -> list[float]:
    return [c.time for c in analysis.cuts] + [(t.start + t.end) / 2 for t in analysis.transitions]


def beat_phase(analysis, facts: MusicFacts) -> Optional[float]:
    """Mean cos(2π·distance to the nearest heard beat, in beats) over the edits inside the music, 0..1."""
    edits = [t for t in edit_times(analysis) if t <= facts.duration]
    if not edits:
        return None
    beats = np.asarray(facts.heard_beats)
    if not facts.pulse_heard or len(beats) < 2:
        return 0.0
    position = beat_positions(np.asarray(edits), beats)
    return float(np.clip(np.mean(np.cos(2 * np.pi * (position - np.round(position)))), 0.0, 1.0))


def rhythm_dimension(analysis, facts: MusicFacts, graded: list[moments.KeyMoment]) -> Dimension:
    heard = facts.pulse_heard
    m_pace, p_pace = music_pace(facts), picture_pace(analysis)
    chance = moments.chance_credit(facts, analysis.fps, analysis.duration)
    parts = {"agreement": moments.agreement(graded, chance), "beat phase": beat_phase(analysis, facts),
             "pace fit": pace_fit(m_pace, p_pace, heard)}
    edits = [m for m in graded if m.kind != "motion peak"]
    share_a = sum(m.grade == "A" for m in edits) / len(edits) if edits else 0.0
    counts = {g: sum(m.grade == g for m in graded) for g in "ABC"}
    facts_ = [f"{len(graded)} key moments: {counts['A']} A, {counts['B']} B, {counts['C']} C "
              f"(A within one frame, 1/{analysis.fps:g} s; B within {moments.B_WINDOW_S:g} s)",
              f"{len(facts.changes)} musical changes (novelty peaks on the beat grid); moments at random "
              f"times would earn {chance:.2f} of full credit",
              f"music tempo {facts.tempo:.1f} BPM, pulse clarity {facts.pulse_clarity:.2f}"
              if facts.tempo else "no musical beat found",
              f"picture: {len(analysis.cuts)} cuts in {analysis.duration:.1f} s, motion {analysis.motion.mean:.3f}"]
    facts_ += [f"{name} {value:.2f}" for name, value in parts.items() if value is not None]
    if not facts.changes:
        alignment, score = "irrelevant", 1.0
    else:
        alignment = rhythm_label(parts["agreement"], share_a, parts["pace fit"], bool(edits))
        measured = [(WEIGHTS[k], v) for k, v in parts.items() if v is not None]
        score = 1.0 + 9.0 * sum(w * v for w, v in measured) / sum(w for w, _ in measured) if measured else None
    labels = {"music pace": m_pace or "not assessed", "picture pace": p_pace, "rhythm alignment": alignment}
    return Dimension("rhythm", score is not None, None if score is None else round(score, 2), labels, facts_)


def rhythm_label(agreement: Optional[float], share_a: float, fit: Optional[float], has_edits: bool) -> str:
    if has_edits and share_a >= PRECISE_SHARE and (agreement is None or agreement >= 0.5):
        return "precise"
    if fit == 0.0 or (agreement is not None and agreement < MISMATCH_AGREEMENT):
        return "mismatch"
    if (agreement is None or agreement >= 0.4) and (fit is None or fit >= 0.5):
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


def soundness_dict(facts: MusicFacts) -> dict:
    if facts.soundness is None:
        return {}
    return {**asdict(facts.soundness), "verdict": facts.soundness.verdict}


# -- ranking variations ------------------------------------------------------------

def variation_value(critique: Critique) -> float:
    """0..1: the mean of the overall score (on 0..1) and the soundness score; flagged music loses half."""
    overall = ((critique.overall or 1.0) - 1.0) / 9.0
    sound = critique.soundness.get("score", 0.0) if critique.soundness else 0.0
    value = (overall + sound) / 2.0
    return value * 0.5 if critique.soundness.get("flagged") else value


def rank_variations(critiques: list[Critique]) -> list[int]:
    """Indices of `critiques`, best first: by `variation_value`, ties kept in the given order."""
    return sorted(range(len(critiques)), key=lambda i: -variation_value(critiques[i]))
