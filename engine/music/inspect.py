"""What `cuesmith inspect MUSIC` reports. MIDI: tempo map, metre, key, chords, beats, parts.
Audio (any format PyAV reads): see `music.audio.analyze_audio`.

Times are in seconds from the start of the file (rounded to microseconds),
with the tick (at `TICKS_PER_BEAT` per quarter) beside them where it helps a
DAW user. The key is the one `music.key.detect_key` hears in the notes; the
file's own key signature, if any, is reported beside it. Chords come from
`music.chords.recognize_chords(song, per="beat")` as Harte labels ('A:min7').
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from ..files import regular_file
from .midi_io import read_midi
from .render import tick_seconds
from .score import Key, Song


@dataclass
class TempoInfo:
    tick: int
    seconds: float
    bpm: float


@dataclass
class MetreInfo:
    tick: int
    seconds: float
    time_signature: str  # "3/4"


@dataclass
class MarkerInfo:
    tick: int
    seconds: float
    text: str


@dataclass
class ChordInfo:
    start: float  # seconds
    end: float
    label: str  # Harte, e.g. "A:min7"; "N" for no chord


@dataclass
class PartInfo:
    name: str
    program: int  # General MIDI, 0-based
    instrument: str  # General MIDI name, or "Drums"
    channel: int  # 1-based, as DAWs show it
    notes: int
    lowest: Optional[str]  # "C#4"; None without notes
    highest: Optional[str]


@dataclass
class KeyInfo:
    name: str  # "A minor"
    tonic: int
    mode: str


@dataclass
class Inspection:
    file: str
    title: str
    duration_seconds: float
    tempos: list[TempoInfo]
    time_signatures: list[MetreInfo]
    key: Optional[KeyInfo]  # detected from the notes
    key_signature: Optional[KeyInfo]  # as written in the file
    chords: Optional[list[ChordInfo]]  # None: no chord recogniser in this install
    beats: list[float]
    downbeats: list[float]
    parts: list[PartInfo]
    markers: list[MarkerInfo] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        notes = sum(p.notes for p in self.parts)
        lines = [f"{Path(self.file).name}: {_clock(self.duration_seconds)}, "
                 f"{len(self.parts)} parts, {notes} notes",
                 f"tempo: {_tempo_text(self.tempos)}",
                 "metre: " + ", ".join(m.time_signature for m in self.time_signatures),
                 f"key: {_key_text(self.key, self.key_signature)}",
                 f"chords: {_chords_text(self.chords)}",
                 f"beats: {len(self.beats)} ({len(self.downbeats)} downbeats)"]
        if self.markers:
            lines.append(f"markers: {len(self.markers)}")
        width = max((len(p.name) for p in self.parts), default=0)
        for p in self.parts:
            span = f"{p.lowest}–{p.highest}" if p.notes else "-"
            lines.append(f"  {p.name:<{width}}  ch {p.channel:<2} {p.instrument:<28} "
                         f"{p.notes:>5} notes  {span}")
        return "\n".join(lines)


MIDI_SUFFIXES = (".mid", ".midi", ".smf")


def inspect_file(path: str | Path):
    """Inspect a MIDI file (an `Inspection`) or any audio file PyAV reads (an `audio.AudioAnalysis`:
    onsets, beats, tempo, key from chroma, BS.1770 loudness, brightness, novelty).
    A file that is neither is a CuesmithError."""
    path = regular_file(path, "MIDI or audio file")  # before reading its first bytes: a FIFO would block
    if path.suffix.lower() in MIDI_SUFFIXES or starts_with_mthd(path):
        return inspect_song(read_midi(path), file=str(path))
    from .audio import analyze_audio_file

    return analyze_audio_file(path)


def starts_with_mthd(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"MThd"
    except OSError:
        return False


def inspect_song(song: Song, file: str = "") -> Inspection:
    beats = song.beats()
    beat_seconds = _seconds(song, [tick for tick, _ in beats])
    return Inspection(
        file=file,
        title=song.title,
        duration_seconds=_round(song.duration_seconds),
        tempos=[TempoInfo(t.tick, s, t.bpm)
                for t, s in zip(song.tempos, _seconds(song, [t.tick for t in song.tempos]))],
        time_signatures=[MetreInfo(ts.tick, s, f"{ts.numerator}/{ts.denominator}")
                         for ts, s in zip(song.time_signatures,
                                          _seconds(song, [ts.tick for ts in song.time_signatures]))],
        key=_key_info(_detected_key(song)),
        key_signature=_key_info(song.key),
        chords=recognized_chords(song),
        beats=beat_seconds,
        downbeats=[s for s, (_, down) in zip(beat_seconds, beats) if down],
        parts=[_part_info(p) for p in song.parts],
        markers=[MarkerInfo(m.tick, s, m.text)
                 for m, s in zip(song.markers, _seconds(song, [m.tick for m in song.markers]))],
    )


def recognized_chords(song: Song) -> Optional[list[ChordInfo]]:
    """Chords per beat as Harte labels; None when the chord recogniser is not installed."""
    try:
        from .chords import harte_label, recognize_chords
    except ModuleNotFoundError as error:
        if error.name != f"{__package__}.chords":
            raise
        return None
    if not any(p.notes for p in song.parts):
        return []
    chords = recognize_chords(song, per="beat")
    starts = _seconds(song, [c.start for c in chords])
    ends = _seconds(song, [c.end for c in chords])
    return [ChordInfo(s, e, harte_label(c)) for c, s, e in zip(chords, starts, ends)]


def _detected_key(song: Song) -> Optional[Key]:
    from .key import detect_key

    return detect_key(song) if any(p.notes for p in song.parts) else None


def _part_info(part) -> PartInfo:
    import pretty_midi

    pitches = [n.pitch for n in part.notes]
    instrument = "Drums" if part.is_drum else pretty_midi.program_to_instrument_name(part.program)
    return PartInfo(name=part.name, program=part.program, instrument=instrument,
                    channel=part.channel + 1, notes=len(part.notes),
                    lowest=pretty_midi.note_number_to_name(min(pitches)) if pitches else None,
                    highest=pretty_midi.note_number_to_name(max(pitches)) if pitches else None)


def _key_info(key: Optional[Key]) -> Optional[KeyInfo]:
    return None if key is None else KeyInfo(key.name, key.tonic, key.mode)


def _seconds(song: Song, ticks: list[int]) -> list[float]:
    return [_round(s) for s in tick_seconds(song, ticks).tolist()] if ticks else []


def _round(seconds: float) -> float:
    return round(float(seconds), 6)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:04.1f}"


def _tempo_text(tempos: list[TempoInfo]) -> str:
    bpms = [t.bpm for t in tempos]
    if len(bpms) == 1:
        return f"{bpms[0]:g} BPM"
    return f"{min(bpms):g}–{max(bpms):g} BPM ({len(bpms) - 1} changes, starts at {bpms[0]:g})"


def _key_text(detected: Optional[KeyInfo], written: Optional[KeyInfo]) -> str:
    text = f"{detected.name} (detected)" if detected else "none (no notes)"
    if written is not None:
        text += f"; the file's key signature says {written.name}"
    return text


def _chords_text(chords: Optional[list[ChordInfo]], shown: int = 8) -> str:
    if chords is None:
        return "not recognised (cuesmith.engine.music.chords is not installed)"
    labels = [c.label for c in chords]
    compact = [label for i, label in enumerate(labels) if i == 0 or label != labels[i - 1]]
    head = " ".join(compact[:shown]) + (" …" if len(compact) > shown else "")
    return f"{len(chords)} {head}".rstrip()
