"""What the critique knows about a piece of music, from MIDI or from audio: `MusicFacts`.

A *musical change* (what key moments are graded against) is one of:

- "accent": an onset at least `ACCENT_SALIENCE` (MIDI; audio
  `AUDIO_ACCENT_SALIENCE`) as strong as the strongest onset within ±2 s
  (audio: onset-envelope peak; MIDI: the summed velocity of the notes starting
  together), so a steady stream of beats counts, ghost notes between them do not;
- "chord": a chord change (MIDI: `music.chords.recognize_chords` per beat);
- "section": a peak of the audio novelty curve (a change of harmony/timbre).

Markers in a MIDI file are not changes: a cut-locked plan writes its cut
times there, and the critique must judge the music, not the plan.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..errors import CuesmithError
from ..music.score import Song

ACCENT_SALIENCE = 0.6
# Audio onset strengths vary more between notes of equal weight (a chord over a ringing one
# measures weaker): onsets that pass audio.ONSET_MIN_GAIN are real, and a third of the local
# maximum keeps every beat of the test renders (benchmarks/bench_critique.py).
AUDIO_ACCENT_SALIENCE = 0.3
MIDI_SUFFIXES = {".mid", ".midi", ".smf"}


@dataclass
class Change:
    time: float
    kind: str  # "accent" | "chord" | "section"
    strength: float  # 0..1


@dataclass
class MusicFacts:
    source: str  # file path, or "song" for one in memory
    kind: str  # "midi" | "audio"
    duration: float
    tempo: Optional[float]  # BPM; None when no beat was found
    tempo_spread: float  # IQR of beat intervals over the median: 0 for a steady tempo
    beats: list[float]
    downbeats: list[float]
    onsets_per_second: float
    changes: list[Change]
    key: Optional[str]
    mode: Optional[str]
    loudness_lufs: Optional[float]  # audio only
    brightness: Optional[float]  # 0..1: audio spectral centroid, or MIDI mean pitch, on a fixed scale
    velocity: Optional[float]  # MIDI mean velocity
    dynamic_range_db: Optional[float] = None  # 90th minus 10th percentile of the level curve
    level_times: list[float] = field(default_factory=list)  # level curve: audio RMS dB / MIDI velocity dB
    level_db: list[float] = field(default_factory=list)
    title: str = ""
    tags: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what could not be measured, in words

    def change_times(self) -> np.ndarray:
        return np.array(sorted(c.time for c in self.changes))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("level_times"), d.pop("level_db")
        d["changes"] = len(self.changes)  # the full list is long; counts by kind follow
        d["changes_by_kind"] = {k: sum(c.kind == k for c in self.changes) for k in ("accent", "chord", "section")}
        return d


def music_facts(source: Union[str, Path, Song], title: str = "") -> MusicFacts:
    """Facts about MIDI (a path or a Song) or audio (any file PyAV reads, video files included)."""
    if isinstance(source, Song):
        return facts_from_song(source, "song")
    path = Path(source)
    if path.suffix.lower() in MIDI_SUFFIXES:
        from ..music.midi_io import read_midi

        return facts_from_song(read_midi(path), str(path))
    from ..music.audio import analyze_audio, load_audio

    return facts_from_audio(analyze_audio(load_audio(path)))


# -- MIDI ----------------------------------------------------------------------

def facts_from_song(song: Song, source: str) -> MusicFacts:
    from ..music.render import tick_seconds

    notes = [n for p in song.parts for n in p.notes]
    if not notes:
        raise CuesmithError("the MIDI has no notes: there is no music to critique", source if source != "song" else None)
    duration = float(tick_seconds(song, np.array([song.end_tick]))[0])
    starts = np.array([n.start for n in notes])
    ticks, index = np.unique(starts, return_inverse=True)
    weight = np.bincount(index, weights=np.array([n.velocity for n in notes], float))
    times = tick_seconds(song, ticks)
    changes = [Change(round(float(t), 4), "accent", round(float(s), 3))
               for t, s in zip(times, salience(times, weight)) if s >= ACCENT_SALIENCE]
    changes += chord_changes(song)
    beats = song.beats(song.end_tick)
    beat_times = tick_seconds(song, np.array([t for t, _ in beats])) if beats else np.zeros(0)
    downbeats = [float(s) for s, (_, d) in zip(beat_times, beats) if d]
    pitched = [n for p in song.parts if not p.is_drum for n in p.notes]
    key = detect_song_key(song) if pitched else None
    return MusicFacts(
        source=source, kind="midi", duration=round(duration, 4), tempo=_rounded(median_tempo(beat_times)),
        tempo_spread=round(spread(beat_times), 4), beats=[round(float(b), 4) for b in beat_times],
        downbeats=[round(d, 4) for d in downbeats], onsets_per_second=round(len(ticks) / max(duration, 1e-6), 3),
        changes=sorted(changes, key=lambda c: c.time), key=key.name if key else None,
        mode=key.mode if key else None, loudness_lufs=None,
        brightness=round(pitch_brightness(np.mean([n.pitch for n in pitched])), 3) if pitched else None,
        velocity=round(float(np.mean([n.velocity for n in notes])), 1), title=song.title,
        dynamic_range_db=round(level_range(20 * np.log10(weight)), 2),
        tags=[m.text for m in song.markers if not m.text.lower().startswith("cut ")])


def _rounded(value: Optional[float], digits: int = 2) -> Optional[float]:
    return None if value is None else round(value, digits)  # a MIDI one beat long has no tempo to measure


def level_range(levels: np.ndarray) -> float:
    if len(levels) < 2:
        return 0.0
    p10, p90 = np.percentile(levels, [10, 90])
    return float(p90 - p10)


def salience(times: np.ndarray, strength: np.ndarray, window: float = 2.0) -> np.ndarray:
    return np.array([s / max(strength[np.abs(times - t) <= window].max(), 1e-9) for t, s in zip(times, strength)])


def chord_changes(song: Song) -> list[Change]:
    """A chord change sounds at the first note that starts inside the new chord's span (the
    recogniser works on beat windows, which says nothing about where in the window it is heard)."""
    from ..music.chords import recognize_chords
    from ..music.render import tick_seconds

    chords = [c for c in recognize_chords(song, per="beat") if not c.is_none]
    starts = np.array(sorted(n.start for p in song.parts if not p.is_drum for n in p.notes))
    heard = []
    for chord in chords[1:]:
        i = int(np.searchsorted(starts, chord.start))
        if i < len(starts) and starts[i] < chord.end:
            heard.append(int(starts[i]))
    return [Change(round(float(t), 4), "chord", 1.0) for t in tick_seconds(song, np.array(heard))] if heard else []


def detect_song_key(song: Song):
    from ..music.key import detect_key

    return detect_key(song)


def median_tempo(beat_times: np.ndarray) -> Optional[float]:
    if len(beat_times) < 2:
        return None
    return float(60.0 / np.median(np.diff(beat_times)))


def spread(beat_times: np.ndarray) -> float:
    intervals = np.diff(beat_times)
    if len(intervals) < 4:
        return 0.0
    q1, q3 = np.percentile(intervals, [25, 75])
    return float((q3 - q1) / np.median(intervals))


def pitch_brightness(mean_pitch: float) -> float:
    """Mean MIDI pitch 48..84 onto 0..1 (the same scale as `centroid_brightness`)."""
    return float(np.clip((mean_pitch - 48.0) / 36.0, 0.0, 1.0))


def centroid_brightness(hz: float) -> float:
    """Spectral centroid 500..4000 Hz onto 0..1, on a log scale."""
    return float(np.clip(np.log(max(hz, 1.0) / 500.0) / np.log(8.0), 0.0, 1.0))


# -- audio ---------------------------------------------------------------------

def facts_from_audio(a) -> MusicFacts:
    problems = []
    if a.silent:
        problems.append("the audio is silent: no onsets, beats, key or loudness")
    elif not a.beats:
        problems.append("no beat was found in the audio (too few onsets)")
    onsets = np.array(a.onsets)
    changes = [Change(float(t), "accent", float(s)) for t, s in zip(onsets, a.onset_salience) if s >= AUDIO_ACCENT_SALIENCE]
    changes += [Change(float(t), "section", 1.0) for t in a.novelty_peaks]
    tags = [v for k, v in a.tags.items() if k in ("title", "artist", "genre", "album", "comment", "description")]
    return MusicFacts(
        source=a.path, kind="audio", duration=a.duration, tempo=a.tempo, tempo_spread=a.tempo_spread,
        beats=list(a.beats), downbeats=list(a.downbeats),
        onsets_per_second=round(len(onsets) / max(a.duration, 1e-6), 3),
        changes=sorted(changes, key=lambda c: c.time), key=a.key, mode=a.mode, loudness_lufs=a.loudness_lufs,
        brightness=None if a.silent else round(centroid_brightness(a.brightness_hz), 3), velocity=None,
        dynamic_range_db=None if a.silent else round(level_range(np.array(a.loudness_db)[np.array(a.loudness_db) > -60]), 2),
        level_times=list(a.loudness_times), level_db=list(a.loudness_db),
        title=a.title, tags=tags, problems=problems)
