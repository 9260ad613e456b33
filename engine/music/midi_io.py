"""Standard MIDI files <-> `Song`.

`read_midi` accepts any type 0/1 file (any PPQ; ticks are rescaled to
`TICKS_PER_BEAT`) and turns every problem into a `CuesmithError`.

`write_midi` writes what DAWs expect (REFERENCE.md, "Editors and DAWs"):
SMF type 1 at PPQ 480; track 0 is the conductor track (tempo map, time
signatures, key signature, markers); then one named track per part with its
own channel (drums on channel 10) and a program change. Same Song, same bytes.

Chord symbols (`Song.chords`) are written as 'text' meta events such as
"Am7" or "Bbsus4" (root spelled as in `PITCH_CLASSES`, then the quality from
`CHORD_QUALITIES`), with "N" where a chord ends and the next does not start.
They go on the track of the part named "chords" when there is one, else on
the conductor track, and `read_midi` reads them back from those two places.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import mido

from ..errors import CuesmithError
from ..files import atomic_path, regular_file
from .score import (CHORD_QUALITIES, NO_CHORD, PITCH_CLASSES, TICKS_PER_BEAT, Chord, Key,
                    Marker, Note, Part, Song, TempoChange, TimeSignature)

MIN_BPM, MAX_BPM = 10.0, 1000.0
DRUM_CHANNEL = 9
CHORD_TRACK_NAME = "chords"

_TONICS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# Key signature spellings with the fewest accidentals, as mido names them.
_MAJOR_KEYS = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MINOR_KEYS = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")


# -- reading ---------------------------------------------------------------

def read_midi(path: str | Path) -> Song:
    """Read a type 0 or 1 MIDI file into a Song (a Part per track, or per channel of a track)."""
    path = Path(path)
    midi = _open_midi(path)
    scale = TICKS_PER_BEAT / midi.ticks_per_beat
    conductor = _Conductor()
    parts: list[Part] = []
    for index, track in enumerate(midi.tracks):
        parts.extend(_read_track(track, scale, conductor, is_conductor=index == 0))
    song = Song(parts=parts,
                tempos=conductor.tempo_map(path),
                time_signatures=conductor.signatures(path),
                markers=sorted(conductor.markers),
                key=conductor.key,
                title=conductor.title or path.stem)
    song.chords = _chords_from_text(conductor.chord_texts, song.end_tick)
    return song


def _open_midi(path: Path) -> mido.MidiFile:
    regular_file(path, "MIDI file")
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as error:
        raise CuesmithError(f"cannot read ({error.strerror or error})", path) from None
    if not magic:
        raise CuesmithError("empty file, not a MIDI file", path)
    if magic != b"MThd":
        raise CuesmithError("not a MIDI file (does not start with MThd)", path)
    try:
        midi = mido.MidiFile(path)
    except EOFError:
        raise CuesmithError("truncated MIDI file (ends in the middle of a track)", path) from None
    except OSError as error:
        text = str(error)
        if "MThd" in text or "MTrk" in text:
            raise CuesmithError("not a MIDI file (no MThd/MTrk header)", path) from None
        raise CuesmithError(f"cannot read MIDI file: {text}", path) from None
    except Exception as error:  # mido raises ValueError/KeyError/... on corrupt data
        raise CuesmithError(f"corrupt MIDI file ({type(error).__name__}: {error})", path) from None
    if midi.type == 2:
        raise CuesmithError("MIDI type 2 (independent patterns) is not supported", path)
    if not midi.tracks:
        raise CuesmithError("MIDI file has no tracks", path)
    if not 0 < midi.ticks_per_beat < 0x8000:
        raise CuesmithError(f"unsupported time division {midi.ticks_per_beat} (SMPTE timing?)", path)
    return midi


@dataclass
class _Conductor:
    """Meta events gathered from every track (files put them anywhere)."""

    tempos: dict[int, float] = field(default_factory=dict)
    time_signatures: dict[int, TimeSignature] = field(default_factory=dict)
    markers: list[Marker] = field(default_factory=list)
    chord_texts: list[tuple[int, str]] = field(default_factory=list)
    key: Optional[Key] = None
    title: str = ""

    def tempo_map(self, path: Path) -> list[TempoChange]:
        for tick, bpm in sorted(self.tempos.items()):
            if not MIN_BPM <= bpm <= MAX_BPM:
                raise CuesmithError(f"absurd tempo {bpm:g} BPM at tick {tick} "
                                    f"(expected {MIN_BPM:g}..{MAX_BPM:g})", path)
        changes = [TempoChange(t, b) for t, b in sorted(self.tempos.items())]
        if not changes or changes[0].tick > 0:
            changes.insert(0, TempoChange(0, 120.0))  # the SMF default until the first tempo
        return changes

    def signatures(self, path: Path) -> list[TimeSignature]:
        found = [self.time_signatures[t] for t in sorted(self.time_signatures)]
        for ts in found:
            if not valid_time_signature(ts):
                raise CuesmithError(f"invalid time signature {ts.numerator}/{ts.denominator} "
                                    f"at tick {ts.tick}", path)
        if not found or found[0].tick > 0:
            found.insert(0, TimeSignature(0, 4, 4))
        return found


def valid_time_signature(ts: TimeSignature) -> bool:
    """A numerator of 1..255 over a power-of-two denominator up to 64ths."""
    return 1 <= ts.numerator <= 255 and ts.denominator in (1, 2, 4, 8, 16, 32, 64)


def _read_track(track: mido.MidiTrack, scale: float, conductor: _Conductor,
                is_conductor: bool) -> list[Part]:
    name = ""
    is_chord_track = False
    open_notes: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    notes: dict[int, list[Note]] = defaultdict(list)
    programs: dict[int, int] = {}
    tick = 0
    for message in track:
        tick += message.time
        at = round(tick * scale)
        if message.type == "track_name":
            name = name or _from_file_text(message.name)
            is_chord_track = name.strip().lower() == CHORD_TRACK_NAME
            if is_conductor:
                conductor.title = name
        elif message.type == "note_on" and message.velocity > 0:
            open_notes[message.channel, message.note].append((at, message.velocity))
        elif message.type in ("note_on", "note_off"):
            pending = open_notes.get((message.channel, message.note))
            if pending:  # first on, first off: repeated pitches close in order
                start, velocity = pending.pop(0)
                notes[message.channel].append(Note(start, max(at, start + 1), message.note, velocity))
        elif message.type == "program_change":
            programs.setdefault(message.channel, message.program)
        else:
            _read_meta(message, at, conductor, chord_text_allowed=is_conductor or is_chord_track)
    end = round(tick * scale)
    for (channel, pitch), pending in open_notes.items():  # never switched off: end with the track
        notes[channel].extend(Note(start, max(end, start + 1), pitch, velocity)
                              for start, velocity in pending)
    return _parts_from_channels(name, notes, programs)


def _read_meta(message, at: int, conductor: _Conductor, chord_text_allowed: bool) -> None:
    if message.type == "set_tempo":
        conductor.tempos[at] = round(60e6 / message.tempo, 3) if message.tempo > 0 else float("inf")
    elif message.type == "time_signature":
        conductor.time_signatures[at] = TimeSignature(at, message.numerator, message.denominator)
    elif message.type == "key_signature" and conductor.key is None:
        conductor.key = _key_from_mido(message.key)
    elif message.type == "marker":
        conductor.markers.append(Marker(at, _from_file_text(message.text)))
    elif message.type == "text" and chord_text_allowed and _parse_chord_symbol(message.text):
        conductor.chord_texts.append((at, message.text.strip()))


def _parts_from_channels(name: str, notes: dict[int, list[Note]],
                         programs: dict[int, int]) -> list[Part]:
    channels = sorted(notes)
    parts = []
    for channel in channels:
        part_name = name if len(channels) == 1 else f"{name or 'track'} ch{channel + 1}"
        parts.append(Part(name=part_name, notes=sorted(notes[channel]),
                          program=programs.get(channel, 0), channel=channel,
                          is_drum=channel == DRUM_CHANNEL))
    return parts


def _key_from_mido(text: str) -> Key:
    minor = text.endswith("m")
    letters = text[:-1] if minor else text
    tonic = _TONICS[letters[0]] + letters.count("#") - letters.count("b")
    return Key(tonic % 12, "minor" if minor else "major")


def _parse_chord_symbol(text: str) -> Optional[tuple[Optional[int], str]]:
    text = text.strip()
    if text == NO_CHORD:
        return None, NO_CHORD
    for root in sorted(PITCH_CLASSES, key=len, reverse=True):  # "C#" before "C"
        if text.startswith(root) and text[len(root):] in CHORD_QUALITIES:
            return PITCH_CLASSES.index(root), text[len(root):]
    return None


def _chords_from_text(texts: list[tuple[int, str]], song_end: int) -> list[Chord]:
    texts = sorted(texts)
    chords = []
    for i, (tick, text) in enumerate(texts):
        root, quality = _parse_chord_symbol(text)
        if root is None:
            continue
        end = texts[i + 1][0] if i + 1 < len(texts) else max(song_end, tick + TICKS_PER_BEAT)
        if end > tick:
            chords.append(Chord(tick, end, root, quality))
    return chords


# -- writing ---------------------------------------------------------------

def write_midi(song: Song, path: str | Path) -> Path:
    """Write `song` as SMF type 1, PPQ 480, atomically; returns `path`."""
    path = Path(path)
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    chord_part = next((p for p in song.parts if p.name.strip().lower() == CHORD_TRACK_NAME), None)
    conductor_events = _conductor_events(song)
    if chord_part is None:
        conductor_events += _chord_events(song.chords)
    midi.tracks.append(_track(song.title or None, conductor_events))
    for part, channel in zip(song.parts, assign_channels(song.parts)):
        events = _part_events(part, channel)
        if part is chord_part:
            events += _chord_events(song.chords)
        midi.tracks.append(_track(part.name, events))
    with atomic_path(path) as tmp:
        midi.save(tmp)
    return path


def assign_channels(parts: list[Part]) -> list[int]:
    """Drums on channel 9 (10 in DAW numbering); other parts keep their channel if
    it is free, else take the next free one, so each part sounds on its own channel."""
    melodic = [c for c in range(16) if c != DRUM_CHANNEL]
    taken: set[int] = set()
    channels = []
    for part in parts:
        if part.is_drum or part.channel == DRUM_CHANNEL:
            channels.append(DRUM_CHANNEL)
            continue
        channel = part.channel
        if channel in taken or channel not in melodic:
            free = [c for c in melodic if c not in taken]
            channel = free[0] if free else melodic[len(channels) % len(melodic)]
        taken.add(channel)
        channels.append(channel)
    return channels


# An event is (tick, order, message): `order` puts meta first and note-offs
# before note-ons at one tick, so a repeated pitch is not cut short.
Event = tuple[int, int, mido.Message]


def _conductor_events(song: Song) -> list[Event]:
    events: list[Event] = []
    for ts in sorted(song.time_signatures):
        if not valid_time_signature(ts):
            raise CuesmithError(f"cannot write time signature {ts.numerator}/{ts.denominator}")
        events.append((ts.tick, 0, mido.MetaMessage(
            "time_signature", numerator=ts.numerator, denominator=ts.denominator,
            clocks_per_click=24, notated_32nd_notes_per_beat=8)))
    if song.key is not None:
        names = _MINOR_KEYS if song.key.mode == "minor" else _MAJOR_KEYS
        events.append((0, 1, mido.MetaMessage("key_signature", key=names[song.key.tonic % 12])))
    for change in sorted(song.tempos):
        if not MIN_BPM <= change.bpm <= MAX_BPM:
            raise CuesmithError(f"cannot write tempo {change.bpm:g} BPM at tick {change.tick}")
        events.append((change.tick, 2, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(change.bpm))))
    for marker in sorted(song.markers):
        events.append((marker.tick, 3, mido.MetaMessage("marker", text=_to_file_text(marker.text))))
    return events


def _chord_events(chords: list[Chord]) -> list[Event]:
    events: list[Event] = []
    ordered = sorted(c for c in chords if not c.is_none)
    for i, chord in enumerate(ordered):
        symbol = f"{PITCH_CLASSES[chord.root]}{chord.quality}"
        events.append((chord.start, 4, mido.MetaMessage("text", text=symbol)))
        next_start = ordered[i + 1].start if i + 1 < len(ordered) else None
        if next_start != chord.end:
            events.append((chord.end, 4, mido.MetaMessage("text", text=NO_CHORD)))
    return events


def _part_events(part: Part, channel: int) -> list[Event]:
    events: list[Event] = [(0, 1, mido.Message("program_change", channel=channel,
                                                program=part.program & 0x7F))]
    for note in sorted(part.notes):
        pitch, velocity = min(max(note.pitch, 0), 127), min(max(note.velocity, 1), 127)
        events.append((note.start, 6, mido.Message("note_on", channel=channel, note=pitch,
                                                   velocity=velocity)))
        events.append((max(note.end, note.start + 1), 5, mido.Message(
            "note_off", channel=channel, note=pitch, velocity=0)))
    return events


def _track(name: Optional[str], events: list[Event]) -> mido.MidiTrack:
    track = mido.MidiTrack()
    if name is not None:
        track.append(mido.MetaMessage("track_name", name=_to_file_text(name)))
    events = sorted(events, key=lambda e: (e[0], e[1], _message_sort_key(e[2])))
    last = 0
    for tick, _, message in events:
        track.append(message.copy(time=max(0, tick - last)))
        last = max(last, tick)
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def _message_sort_key(message) -> tuple:
    return (getattr(message, "note", -1), getattr(message, "text", ""))


# mido stores meta text as latin-1; we put UTF-8 bytes there (what current DAWs
# show) and read them back as UTF-8 when they decode, else as latin-1.
def _to_file_text(text: str) -> str:
    return text.encode("utf-8").decode("latin-1")


def _from_file_text(text: str) -> str:
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text

