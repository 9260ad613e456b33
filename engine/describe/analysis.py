"""What `cuesmith describe` knows about a piece of music: `MusicAnalysis`.

Built on the critique's `MusicFacts` (tempo, beats, downbeats, key, loudness)
plus, per beat, the features the sections are found from:
- MIDI: pitch-class chroma (sounding time), onset density, velocity level,
  mean pitch and the number of parts playing; chords from
  `music.chords.recognize_chords`; instruments from the General MIDI programs;
- audio: beat-synchronous chroma, MFCC 1-12 and RMS level; instead of
  instruments, texture words from the share of percussive energy (HPSS), the
  bass share and the spectral centroid.
MIDI files whose metre is a placeholder (bars of one beat, as in POP909's files)
are regrouped into 4-beat bars at the phase where the chroma changes most.
Energy is relative to the song: the level curve mapped 0..1 between its 5th and
95th percentiles. Mood: valence/arousal by the critique's `music_affect` (see
`mood_of`), overall and per section.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Optional, Union

import numpy as np

from ..errors import CuesmithError
from ..music.inspect import MIDI_SUFFIXES, starts_with_mthd
from ..music.score import Song
from ..progress import Progress, report
from .sections import SectionConfig, find_boundaries, letters, section_names, standardise

ENERGY_STEP_S = 0.1


@dataclass
class Section:
    name: str  # "intro", "verse 1", "chorus 2", "bridge 1", "outro" (see sections.py)
    letter: str  # sections with the same letter share material
    start: float
    end: float
    energy: float  # 0..1, relative to the song
    valence: float
    arousal: float
    mood: str  # a HarmonySet emotion label


@dataclass
class MusicAnalysis:
    source: str
    kind: str  # "midi" | "audio"
    duration: float
    tempo: Optional[float]  # BPM
    beats: list[float]
    downbeats: list[float]
    key: Optional[str]  # "A minor"
    mode: Optional[str]
    loudness_lufs: Optional[float]
    instruments: list[str]  # MIDI: General MIDI names; audio: empty
    texture: list[str]  # audio: "percussive", "bass-heavy", "bright", ...; MIDI: from the parts
    chords: list[tuple[float, float, str]]  # (start, end, Harte label); MIDI only
    onsets: list[float]
    energy_times: list[float]
    energy: list[float]  # 0..1
    sections: list[Section]
    valence: float
    arousal: float
    mood: str
    percussive: float  # 0..1 share of percussive energy (audio) or of drum notes (MIDI)
    title: str = ""
    tags: list[str] = field(default_factory=list)  # from the file's metadata
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("energy_times"), d.pop("energy"), d.pop("onsets")  # long; the windows carry them
        return d

    def section_at(self, time: float) -> Section:
        return next((s for s in self.sections if s.start <= time < s.end), self.sections[-1])

    def energy_between(self, start: float, end: float) -> float:
        times, values = np.asarray(self.energy_times), np.asarray(self.energy)
        inside = values[(times >= start) & (times < end)]
        return float(inside.mean()) if len(inside) else float(np.interp(start, times, values)) if len(times) else 0.0


def analyze_music(source: Union[str, Path, Song], progress: Optional[Progress] = None,
                  config: SectionConfig = SectionConfig()) -> MusicAnalysis:
    """MIDI (a path or a Song) or any audio file PyAV reads; a CuesmithError if it cannot be described."""
    if isinstance(source, Song):
        return analyze_song(source, "song", progress, config)
    path = Path(source)
    if path.suffix.lower() in MIDI_SUFFIXES or starts_with_mthd(path):
        from ..music.midi_io import read_midi

        return analyze_song(read_midi(path), str(path), progress, config)
    return analyze_audio_file(path, progress, config)


# -- MIDI ----------------------------------------------------------------------

def analyze_song(song: Song, source: str, progress: Optional[Progress] = None,
                 config: SectionConfig = SectionConfig()) -> MusicAnalysis:
    from ..critique.music import facts_from_song, pitch_brightness
    from ..music.inspect import recognized_chords
    from ..music.render import tick_seconds

    report(progress, "analyse music", 0.1)
    if not any(p.notes for p in song.parts):
        raise CuesmithError("the MIDI has no notes: there is no music to describe",
                            source if source != "song" else None)
    facts = facts_from_song(song, source)
    notes = [(n, p) for p in song.parts for n in p.notes]
    starts = tick_seconds(song, np.array([n.start for n, _ in notes]))
    ends = tick_seconds(song, np.array([n.end for n, _ in notes]))
    beats = np.array(facts.beats)
    report(progress, "analyse music", 0.4)
    features = midi_beat_features(notes, starts, ends, beats, facts.duration)
    downbeats = np.array(facts.downbeats)
    if len(beats) and len(downbeats) > 0.75 * len(beats):  # a placeholder metre: bars of one beat
        downbeats = regrouped_downbeats(features[:, :12], beats)
    chords = [(c.start, c.end, c.label) for c in (recognized_chords(song) or []) if c.label != "N"]
    velocity = np.array([n.velocity for n, _ in notes], float)
    pitches = np.array([n.pitch for n, _ in notes], float)
    pitched = np.array([not p.is_drum for _, p in notes])
    energy_times, energy = midi_energy(starts, velocity, facts.duration)
    drums = sum(p.is_drum for _, p in notes) / max(len(notes), 1)
    report(progress, "analyse music", 0.7)
    analysis = MusicAnalysis(
        source=source, kind="midi", duration=facts.duration, tempo=facts.tempo, beats=facts.beats,
        downbeats=[round(float(d), 4) for d in downbeats], key=facts.key, mode=facts.mode, loudness_lufs=None,
        instruments=instruments(song), texture=midi_texture(song), chords=chords,
        onsets=[round(float(t), 4) for t in np.unique(starts)], energy_times=energy_times, energy=energy,
        sections=[], valence=0.0, arousal=0.0, mood="", percussive=round(drums, 3), title=song.title,
        tags=list(facts.tags), problems=list(facts.problems))
    overall = mood_of(facts.mode, facts.tempo, facts.brightness, None, facts.velocity, facts.onsets_per_second)
    analysis.valence, analysis.arousal, analysis.mood = overall.valence, overall.arousal, overall.label

    def section_level(start: float, end: float) -> dict:
        inside = (starts >= start) & (starts < end)
        sounding = inside & pitched
        return {"velocity": float(velocity[inside].mean()) if inside.any() else facts.velocity,
                "density": len(np.unique(starts[inside])) / max(end - start, 1e-6),
                "brightness": pitch_brightness(float(pitches[sounding].mean())) if sounding.any() else facts.brightness}

    analysis.sections = build_sections(analysis, features, facts.brightness, section_level, config)
    report(progress, "analyse music", 1.0)
    return analysis


def midi_beat_features(notes, starts: np.ndarray, ends: np.ndarray, beats: np.ndarray, duration: float) -> np.ndarray:
    """(beats, 16): chroma by sounding time, onset density, velocity level, mean pitch, parts playing."""
    if len(beats) == 0:
        return np.zeros((0, 16))
    edges = np.append(beats, max(duration, beats[-1] + 1e-3))
    lo, hi = edges[:-1], edges[1:]
    overlap = np.clip(np.minimum(ends[:, None], hi[None, :]) - np.maximum(starts[:, None], lo[None, :]), 0, None)
    pitch = np.array([n.pitch for n, _ in notes])
    pitched = np.array([not p.is_drum for _, p in notes])
    chroma = np.zeros((len(lo), 12))
    for pc in range(12):
        chroma[:, pc] = overlap[(pitch % 12 == pc) & pitched].sum(axis=0)
    length = hi - lo
    onset_in = (starts[:, None] >= lo[None, :]) & (starts[:, None] < hi[None, :])
    velocity = np.array([n.velocity for n, _ in notes], float)
    density = onset_in.sum(axis=0) / length
    level = (onset_in * velocity[:, None]).sum(axis=0) / length
    sounding = overlap > 0
    mean_pitch = (sounding * pitch[:, None]).sum(axis=0) / np.maximum(sounding.sum(axis=0), 1)
    part_ids = {id(p): i for i, p in enumerate({id(p): p for _, p in notes}.values())}
    owner = np.array([part_ids[id(p)] for _, p in notes])
    parts = np.array([len(set(owner[sounding[:, b]])) for b in range(len(lo))], float)
    chroma = chroma / np.maximum(chroma.sum(axis=1, keepdims=True), 1e-9)
    return np.column_stack([chroma, np.log1p(density), np.log1p(level), mean_pitch / 12.0, parts])


def regrouped_downbeats(chroma: np.ndarray, beats: np.ndarray, per_bar: int = 4) -> np.ndarray:
    """Every `per_bar`-th beat, at the phase where the chroma changes most (chords change on bar lines)."""
    if len(beats) < 2 * per_bar:
        return beats[:1]
    change = np.r_[0.0, np.linalg.norm(np.diff(chroma, axis=0), axis=1)]
    phase = int(np.argmax([change[p::per_bar].mean() for p in range(per_bar)]))
    return beats[phase::per_bar]


def midi_energy(starts: np.ndarray, velocity: np.ndarray, duration: float) -> tuple[list[float], list[float]]:
    """Velocity per second over a 1 s window, in dB, mapped 0..1 (see `relative`)."""
    times = np.arange(0.0, max(duration, ENERGY_STEP_S), ENERGY_STEP_S)
    order = np.argsort(starts)
    cumulative = np.r_[0.0, np.cumsum(velocity[order])]
    s = starts[order]
    total = cumulative[np.searchsorted(s, times + 0.5)] - cumulative[np.searchsorted(s, times - 0.5)]
    return _r(times, 2), _r(relative(10 * np.log10(np.maximum(total, 1.0))), 3)


def relative(levels: np.ndarray) -> np.ndarray:
    low, high = np.percentile(levels, [5, 95]) if len(levels) else (0.0, 1.0)
    return np.clip((levels - low) / max(high - low, 1e-6), 0.0, 1.0)


def instruments(song: Song) -> list[str]:
    import pretty_midi

    names = []
    for part in song.parts:
        if part.notes:
            name = "Drums" if part.is_drum else pretty_midi.program_to_instrument_name(part.program)
            names.append(name)
    return list(dict.fromkeys(names))


def midi_texture(song: Song) -> list[str]:
    pitched = [n for p in song.parts if not p.is_drum for n in p.notes]
    words = []
    if any(p.is_drum and p.notes for p in song.parts):
        words.append("drums")
    if pitched and np.percentile([n.pitch for n in pitched], 10) < 45:
        words.append("low bass register")
    parts = sum(bool(p.notes) for p in song.parts)
    words.append("solo" if parts == 1 else "small ensemble" if parts <= 3 else "full arrangement")
    return words


# -- audio ---------------------------------------------------------------------

def analyze_audio_file(path: Path, progress: Optional[Progress] = None,
                       config: SectionConfig = SectionConfig()) -> MusicAnalysis:
    from ..critique.music import facts_from_audio
    from ..music.audio import analyze_audio, load_audio

    report(progress, "analyse music", 0.05)
    audio = load_audio(path)  # CuesmithError for anything PyAV cannot decode
    report(progress, "analyse music", 0.2)
    measured = analyze_audio(audio)
    if measured.silent:
        raise CuesmithError("the audio is silent: there is no music to describe", path)
    facts = facts_from_audio(measured, audio)
    report(progress, "analyse music", 0.6)
    beats = np.array(measured.beats)
    features, percussive, bass, onsets = audio_beat_features(audio.mono, beats)
    levels = np.array(measured.loudness_db)
    energy = relative(levels)
    analysis = MusicAnalysis(
        source=str(path), kind="audio", duration=measured.duration, tempo=measured.tempo,
        beats=list(measured.beats), downbeats=list(measured.downbeats), key=measured.key, mode=measured.mode,
        loudness_lufs=measured.loudness_lufs, instruments=[],
        texture=audio_texture(percussive, bass, measured.brightness_hz), chords=[], onsets=list(measured.onsets),
        energy_times=list(measured.loudness_times), energy=_r(energy, 3), sections=[], valence=0.0, arousal=0.0,
        mood="", percussive=round(percussive, 3), title=measured.title, tags=list(facts.tags),
        problems=list(facts.problems))
    overall = mood_of(facts.mode, facts.tempo, facts.brightness, facts.loudness_lufs, None, facts.onsets_per_second)
    analysis.valence, analysis.arousal, analysis.mood = overall.valence, overall.arousal, overall.label
    times = np.array(measured.loudness_times)
    onset_times = np.array(measured.onsets)

    def section_level(start: float, end: float) -> dict:
        inside = levels[(times >= start) & (times < end)]
        mean_db = float(10 * np.log10(np.mean(10 ** (inside / 10)))) if len(inside) else -60.0
        offset = (facts.loudness_lufs or -23.0) - float(10 * np.log10(np.mean(10 ** (levels / 10))))
        return {"lufs": mean_db + offset,  # the section's level on the song's LUFS scale
                "density": int(((onset_times >= start) & (onset_times < end)).sum()) / max(end - start, 1e-6)}

    analysis.sections = build_sections(analysis, features, facts.brightness, section_level, config)
    report(progress, "analyse music", 1.0)
    return analysis


def audio_beat_features(mono: np.ndarray, beats: np.ndarray) -> tuple[np.ndarray, float, float, int]:
    """(beats, 25) chroma + MFCC 1-12 + RMS dB per beat; the percussive and bass shares of the energy."""
    import librosa

    from ..music.audio import ANALYSIS_RATE

    hop = 1024
    spectrum = np.abs(librosa.stft(mono, n_fft=2048, hop_length=hop))
    power = spectrum ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=ANALYSIS_RATE)
    # HPSS on the 128 mel bands rather than the 1025 FFT bins: the share it measures barely moves, at ~1/8 the cost
    harmonic, percussive = librosa.decompose.hpss(np.sqrt(mel))
    total = float((harmonic ** 2).sum() + (percussive ** 2).sum())
    percussive_share = float((percussive ** 2).sum()) / max(total, 1e-12)
    freqs = librosa.fft_frequencies(sr=ANALYSIS_RATE, n_fft=2048)
    bass_share = float(power[freqs < 150].sum() / max(power.sum(), 1e-12))
    if len(beats) < 2:
        return np.zeros((len(beats), 25)), percussive_share, bass_share, 0
    chroma = librosa.feature.chroma_stft(S=power, sr=ANALYSIS_RATE, hop_length=hop, tuning=0.0)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=13)[1:]
    rms = librosa.amplitude_to_db(librosa.feature.rms(S=spectrum, frame_length=2048), ref=1.0)
    frames = np.clip(librosa.time_to_frames(beats, sr=ANALYSIS_RATE, hop_length=hop), 0, chroma.shape[1] - 1)
    stacked = np.vstack([chroma, mfcc / 10.0, rms / 10.0])
    synced = librosa.util.sync(stacked, frames, aggregate=np.mean)  # a column before the first beat, then one per beat
    per_beat = synced[:, 1:1 + len(beats)].T if synced.shape[1] > len(beats) else synced[:, :len(beats)].T
    if len(per_beat) < len(beats):
        per_beat = np.vstack([per_beat, np.repeat(per_beat[-1:], len(beats) - len(per_beat), axis=0)])
    return per_beat, percussive_share, bass_share, len(beats)


def audio_texture(percussive: float, bass: float, brightness_hz: float) -> list[str]:
    words = ["percussive" if percussive > 0.35 else "tonal, sustained" if percussive < 0.15 else "mixed attack"]
    if bass > 0.35:
        words.append("bass-heavy")
    words.append("bright" if brightness_hz > 2500 else "warm, dark" if brightness_hz < 1200 else "balanced tone")
    return words


# -- sections and mood ---------------------------------------------------------

def mood_of(mode: Optional[str], tempo: Optional[float], brightness: Optional[float], lufs: Optional[float],
            velocity: Optional[float], onsets_per_second: float):
    """Valence/arousal and a label, by the critique's mapping (critique.emotion.music_affect): one
    mapping for the critique and the description. Uses engine/music/mood.py once that module exists."""
    from ..critique.emotion import music_affect

    return music_affect(SimpleNamespace(mode=mode, tempo=tempo, brightness=brightness, loudness_lufs=lufs,
                                        velocity=velocity, onsets_per_second=onsets_per_second))


def build_sections(analysis: MusicAnalysis, features: np.ndarray, brightness: Optional[float], level_of,
                   config: SectionConfig) -> list[Section]:
    beats, bars = np.array(analysis.beats), np.array(analysis.downbeats)
    cuts = find_boundaries(features, beats, bars, config) if len(features) else []
    edges = [0.0] + [c for c in cuts if 0.0 < c < analysis.duration] + [analysis.duration]
    spans = list(zip(edges[:-1], edges[1:]))
    z = standardise(features) if len(features) > 1 else features
    index = np.searchsorted(np.array(edges), beats, side="right") - 1
    dims = z.shape[1] if z.ndim == 2 and len(z) else 1
    means = np.array([z[index == i].mean(axis=0) if (index == i).any() else np.zeros(dims) for i in range(len(spans))])
    energy = [analysis.energy_between(a, b) for a, b in spans]
    letter_of = letters(means, config.same_material)
    names = section_names(letter_of, energy, config.quiet)
    sections = []
    for i, ((start, end), name, letter, level) in enumerate(zip(spans, names, letter_of, energy)):
        measured = level_of(start, end)
        chroma = features[index == i, :12].sum(axis=0) if (index == i).any() else np.zeros(12)
        own = section_mode(chroma)
        mode = analysis.mode if own in (None, analysis.mode) else None  # leaning away from the key: in between
        affect = mood_of(mode, analysis.tempo, measured.get("brightness", brightness),
                         measured.get("lufs"), measured.get("velocity"), measured["density"])
        sections.append(Section(name, letter, round(start, 4), round(end, 4), round(level, 3),
                                affect.valence, affect.arousal, affect.label))
    return sections


def section_mode(chroma: np.ndarray) -> Optional[str]:
    """The mode the section's own pitch content leans to (Krumhansl–Kessler profiles); None without notes.
    A section leaning away from the song's mode (a verse on the relative minor) gets the "unknown" mode value,
    between major and minor, in its valence."""
    from ..music.key import KK_MAJOR, KK_MINOR, MODES, key_scores

    if chroma.sum() <= 0 or np.ptp(chroma) < 1e-9:
        return None
    mode, _ = np.unravel_index(int(np.argmax(key_scores(chroma, KK_MAJOR, KK_MINOR))), (2, 12))
    return MODES[mode]


def _r(values, digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in values]
