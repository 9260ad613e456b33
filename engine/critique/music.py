"""What the critique knows about a piece of music, from MIDI or from audio: `MusicFacts`.

Musical changes (what key moments are graded against) are local novelty peaks
on the heard beat grid: accent, harmony and texture (changes.py, where the
detectors and their thresholds are documented). Soundness facts (is it music
at all?) are in soundness.py; `harmony_major` (the weighted share of beats
whose best-fitting triad is major) feeds the emotion check.

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
from . import soundness as sound
from .changes import Change, Pulse, Sounding, audio_sounding, detect_changes, midi_sounding, window_means

MIDI_SUFFIXES = {".mid", ".midi", ".smf"}


@dataclass
class MusicFacts:
    source: str  # file path, or "song" for one in memory
    kind: str  # "midi" | "audio"
    duration: float
    tempo: Optional[float]  # BPM; None when no beat was found
    tempo_spread: float  # IQR of beat intervals over the median: 0 for a steady tempo
    beats: list[float]  # MIDI: from the tempo map and metre; audio: the tracker's
    downbeats: list[float]
    onsets_per_second: float
    changes: list[Change]  # novelty peaks on the heard beat grid (changes.py)
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
    heard_beats: list[float] = field(default_factory=list)  # `beats` moved by the phase the onsets show
    pulse_clarity: float = 0.0  # 0..1: how firmly onsets sit on the beat grid (changes.pulse)
    pulse_heard: bool = False  # clarity at or above the floor (MIDI and audio floors differ)
    beat_phase: float = 0.0  # beats the heard grid lies after the notated/tracked one
    harmony_major: Optional[float] = None  # weighted share of beats whose best triad is major
    soundness: Optional[sound.Soundness] = None

    def change_times(self) -> np.ndarray:
        return np.array(sorted(c.time for c in self.changes))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("level_times"), d.pop("level_db")
        d["changes"] = len(self.changes)  # the full list is long; counts by kind follow
        d["changes_by_kind"] = {k: sum(c.kind == k for c in self.changes) for k in ("harmony", "texture", "accent")}
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

    audio = load_audio(path)
    return facts_from_audio(analyze_audio(audio), audio)


# -- MIDI ----------------------------------------------------------------------

def facts_from_song(song: Song, source: str) -> MusicFacts:
    from ..music.render import tick_seconds

    notes = [n for p in song.parts for n in p.notes]
    if not notes:
        raise CuesmithError("the MIDI has no notes: there is no music to critique", source if source != "song" else None)
    duration = float(tick_seconds(song, np.array([song.end_tick]))[0])
    sounding = midi_sounding(song)
    changes, heard = detect_changes(sounding)
    beats = song.beats(song.end_tick)
    notated = tick_seconds(song, np.array([t for t, _ in beats])) if beats else np.zeros(0)
    downbeats = [float(s) for s, (_, d) in zip(notated, beats) if d]
    pitched = [n for p in song.parts if not p.is_drum for n in p.notes]
    key = detect_song_key(song) if pitched else None
    weight = sounding.onset_strength
    soundness = sound.judge(sound.midi_facts(song, sounding, heard.clarity, duration), sound.density(song, duration),
                            bars=len(song.bars(song.end_tick)))
    return MusicFacts(
        source=source, kind="midi", duration=round(duration, 4), tempo=rounded(median_tempo(notated)),
        tempo_spread=round(spread(notated), 4), beats=[round(float(b), 4) for b in notated],
        heard_beats=heard_beats(heard, notated),
        downbeats=[round(d, 4) for d in downbeats],
        onsets_per_second=round(len(sounding.onset_times) / max(duration, 1e-6), 3),
        changes=changes, key=key.name if key else None,
        mode=key.mode if key else None, loudness_lufs=None,
        brightness=round(pitch_brightness(np.mean([n.pitch for n in pitched])), 3) if pitched else None,
        velocity=round(float(np.mean([n.velocity for n in notes])), 1), title=song.title,
        dynamic_range_db=round(level_range(20 * np.log10(weight)), 2),
        tags=[m.text for m in song.markers if not m.text.lower().startswith("cut ")],
        problems=pulse_problems(heard, sounding.pulse_min), pulse_clarity=heard.clarity, pulse_heard=heard.heard,
        beat_phase=heard.phase,
        harmony_major=major_share(sounding, heard), soundness=soundness)


def rounded(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 2)


def heard_beats(heard: Pulse, fallback: np.ndarray) -> list[float]:
    return [round(float(b), 4) for b in (heard.beats if heard.heard else fallback)]


def pulse_problems(heard: Pulse, floor: float) -> list[str]:
    if heard.heard or heard.clarity == 0.0:
        return []
    return [f"no steady pulse is heard (pulse clarity {heard.clarity:.2f}, below {floor:g}): "
            "no change counts as on the beat"]


def major_share(s: Sounding, heard: Pulse) -> Optional[float]:
    """Weighted share of beats whose best-fitting triad (of 24) is major; None without beats or notes."""
    beats = heard.beats if heard.heard else s.grid
    if len(beats) < 2:
        return None
    windows = window_means(s.chroma, s.frame_s, beats[:-1], beats[1:])
    weight = windows.sum(axis=1)
    if weight.sum() <= 0:
        return None
    best = (windows @ sound.TRIADS.T).argmax(axis=1)
    return round(float(np.sum(weight * (best < 12)) / weight.sum()), 3)


def level_range(levels: np.ndarray) -> float:
    if len(levels) < 2:
        return 0.0
    p10, p90 = np.percentile(levels, [10, 90])
    return float(p90 - p10)


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

def facts_from_audio(a, audio=None) -> MusicFacts:
    """Facts from `a` (music.audio.AudioAnalysis); the change detectors and soundness facts also need
    the samples (`audio`, a music.audio.Audio): without them there are no changes and no soundness."""
    problems = []
    if a.silent:
        problems.append("the audio is silent: no onsets, beats, key or loudness")
    elif not a.beats:
        problems.append("no beat was found in the audio (too few onsets)")
    changes, heard, harmony, soundness = [], Pulse(0.0, 0.0, np.zeros(0)), None, None
    if audio is None and not a.silent:
        problems.append("no samples were given with the audio analysis: no changes or soundness facts")
    elif a.beats and len(a.onsets) >= 4:
        sounding = audio_sounding(audio, a)
        changes, heard = detect_changes(sounding)
        problems += pulse_problems(heard, sounding.pulse_min)
        harmony = major_share(sounding, heard)
        soundness = sound.judge(sound.audio_facts(sounding, heard.clarity), audio=True, bars=len(a.beats) / 4)
    tags = [v for k, v in a.tags.items() if k in ("title", "artist", "genre", "album", "comment", "description")]
    levels = np.array(a.loudness_db)
    return MusicFacts(
        source=a.path, kind="audio", duration=a.duration, tempo=a.tempo, tempo_spread=a.tempo_spread,
        beats=list(a.beats), heard_beats=heard_beats(heard, np.array(a.beats)), downbeats=list(a.downbeats),
        onsets_per_second=round(len(a.onsets) / max(a.duration, 1e-6), 3),
        changes=changes, key=a.key, mode=a.mode, loudness_lufs=a.loudness_lufs,
        brightness=None if a.silent else round(centroid_brightness(a.brightness_hz), 3), velocity=None,
        dynamic_range_db=None if a.silent else round(level_range(levels[levels > -60]), 2),
        level_times=list(a.loudness_times), level_db=list(a.loudness_db),
        title=a.title, tags=tags, problems=problems, pulse_clarity=heard.clarity, pulse_heard=heard.heard,
        beat_phase=heard.phase,
        harmony_major=harmony, soundness=soundness)
