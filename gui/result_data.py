"""What the result view shows, read from a job's result file (no Qt here).

A score job's `result.json` (engine/schema.py `ScoreResult`, schema version 2)
carries a `placement`: every time the view draws (graded key moments with their
colours and notes, section starts, beats, downbeats, chord spans) and the files
(the MIDI, the mix and stems). The critique is the engine's own `Critique`,
read with `Critique.from_dict`. The MIDI is read only to draw its notes.

A critique job's `critique.json` (and a version-1 result.json, which has no
placement) gets the same `Placement`, made the way the engine makes one from
the critique's key moments and measured beats.

Anything missing or of the wrong shape is a `CuesmithError` naming the file,
so the panel can say so and keep working.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from cuesmith.engine.critique import Critique
from cuesmith.engine.errors import CuesmithError
from cuesmith.engine.schema import Placement

MIDI_SUFFIXES = (".mid", ".midi")
GRADES = ("A", "B", "C")


@dataclass
class NoteSpan:
    start: float  # seconds
    end: float
    pitch: int
    velocity: int


@dataclass
class ChordSpan:
    start: float
    end: float
    label: str


@dataclass
class Music:
    """What the piano roll draws: the notes of a MIDI file in seconds, per part, and the chord spans."""

    path: str
    parts: dict[str, list[NoteSpan]]
    chords: list[ChordSpan]
    duration: float


@dataclass
class ResultData:
    kind: str  # "score" | "critique"
    path: str  # the result file
    video: str
    start: Optional[float]
    end: Optional[float]
    duration: float  # seconds of the clip
    cut_times: list[float]
    critique: Optional[Critique]
    placement: Placement
    music: Optional[Music]  # None: no MIDI (audio only)
    music_file: str  # the MIDI or audio the critique judged ("" for a score's own music)
    stems: dict[str, str]  # name -> audio file, "mix" first
    tempo: Optional[float] = None
    key: str = ""
    request: dict[str, Any] = field(default_factory=dict)

    @property
    def midi(self) -> str:
        return self.placement.midi or ""

    @property
    def moments(self):
        """The graded markers (critique key moments), in time order."""
        return [m for m in self.placement.markers if m.grade]

    @property
    def sections(self) -> list[dict]:
        return self.placement.sections


def load_result(path: str | Path) -> ResultData:
    """A score's result.json or a critique's critique.json -> ResultData; CuesmithError when malformed."""
    path = Path(path)
    values = read_json(path)
    try:
        if values.get("schema") == "cuesmith.critique":
            return critique_result(path, values)
        if "variations" in values:
            return score_result(path, values)
    except CuesmithError as error:
        if error.path is None:  # the schema's own check: name the file
            raise CuesmithError(f"malformed result: {error}", path) from None
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise CuesmithError(f"malformed result: {describe(error)}", path) from None
    raise CuesmithError("not a cuesmith score or critique result", path)


def read_json(path: Path) -> dict:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CuesmithError("result file not found", path) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CuesmithError(f"cannot read the result ({error})", path) from None
    except ValueError as error:
        raise CuesmithError(f"malformed result: not JSON ({error})", path) from None
    if not isinstance(values, dict):
        raise CuesmithError("malformed result: not a JSON object", path)
    return values


def describe(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error}"
    return str(error) or type(error).__name__


def score_result(path: Path, values: dict) -> ResultData:
    from cuesmith.engine.schema import ScoreResult

    result = ScoreResult.from_dict(values)
    critique_file = result.critique.get("json") if result.critique else None
    critique = load_critique(Path(critique_file)) if critique_file else None
    placement = result.placement or version1_placement(result, critique)
    request = result.request
    return ResultData(
        kind="score", path=str(path), video=request.video or (request.clips[0]["video"] if request.clips else ""),
        start=request.start, end=request.end, duration=float(placement.duration),
        cut_times=[float(t) for t in result.cut_times], critique=critique, placement=placement,
        music=load_music(placement.midi, placement.chords or None) if placement.midi else None, music_file="",
        stems=placed_audio(placement), tempo=float(placement.tempo), key=placement.key, request=request.to_dict())


def critique_result(path: Path, values: dict) -> ResultData:
    critique = parse_critique(values)
    music_file = str(critique.music or "")
    video = critique.measurements["video"]
    is_midi = music_file.lower().endswith(MIDI_SUFFIXES)
    playable = music_file if music_file and not is_midi and Path(music_file).is_file() else ""
    measured = critique.measurements.get("music", {})
    placement = critique_placement(critique, float(critique.duration), midi=music_file if is_midi else None,
                                   tempo=measured.get("tempo") or 0.0, key=measured.get("key") or "")
    if playable:
        placement.audio = {"mix": None, "stems": {"music": playable}}
    return ResultData(
        kind="critique", path=str(path), video=str(critique.video or ""), start=None, end=None,
        duration=placement.duration, cut_times=[float(t) for t in video.get("cuts", [])], critique=critique,
        placement=placement, music=load_music(music_file) if is_midi else None, music_file=music_file,
        stems=placed_audio(placement), tempo=measured.get("tempo"), key=placement.key)


def load_critique(path: Path) -> Critique:
    values = read_json(path)
    try:
        return parse_critique(values)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CuesmithError(f"malformed critique: {describe(error)}", path) from None


def parse_critique(values: dict) -> Critique:
    """The engine's Critique of critique.json, its grades checked (the strip colours them)."""
    if values.get("schema") != "cuesmith.critique":
        raise ValueError("not a cuesmith critique")
    critique = Critique.from_dict(values)
    for moment in critique.key_moments:
        if moment.grade not in GRADES:
            raise ValueError(f"key moment grade {moment.grade!r} is not A, B or C")
    return critique


def critique_placement(critique: Critique, duration: float, midi: Optional[str] = None, tempo: float = 0.0,
                       key: str = "") -> Placement:
    """The placement of a result that has none (a critique, a version-1 score): the critique's graded moments
    as markers (as the engine marks them) and its measured beats; no sections or chords."""
    from cuesmith.engine.pipelines.placement import moment_marker

    music = critique.measurements.get("music", {})
    return Placement(duration=duration, tempo=float(tempo or 0.0), key=key, midi=midi,
                     beats=[float(b) for b in music.get("beats", [])],
                     downbeats=[float(b) for b in music.get("downbeats", [])],
                     markers=sorted((moment_marker(m) for m in critique.key_moments), key=lambda m: m.time))


def version1_placement(result, critique: Optional[Critique]) -> Placement:
    """A version-1 result.json's placement: its first variation's files, the critique's moments and beats."""
    variation = result.variations[0] if result.variations else None
    stems = dict(variation.stems) if variation else {}
    if critique is None:
        placement = Placement(duration=result.duration, tempo=result.tempo, key=result.key)
    else:
        placement = critique_placement(critique, result.duration, tempo=result.tempo, key=result.key)
    placement.midi = variation.midi if variation else None
    placement.audio = {"mix": stems.pop("mix", None), "stems": stems}
    return placement


def placed_audio(placement: Placement) -> dict[str, str]:
    """name -> file of the placement's audio: the mix first, then the stems by name."""
    audio = placement.audio or {}
    stems = {"mix": audio["mix"]} if audio.get("mix") else {}
    stems.update(sorted((audio.get("stems") or {}).items()))
    return stems


def load_music(midi: str | Path, chords: Optional[list[dict]] = None) -> Music:
    """The notes (seconds) of each part of a MIDI file, to draw; `chords` are the placement's chord spans
    (without them, the chord symbols written in the file)."""
    import numpy as np

    from cuesmith.engine.music.midi_io import read_midi
    from cuesmith.engine.music.render import tick_seconds

    song = read_midi(midi)

    def seconds(ticks) -> list[float]:
        return [float(s) for s in tick_seconds(song, np.asarray(ticks, dtype=np.float64))] if len(ticks) else []

    parts = {}
    for part in song.parts:
        starts, ends = seconds([n.start for n in part.notes]), seconds([n.end for n in part.notes])
        parts[part.name or f"part {len(parts) + 1}"] = [
            NoteSpan(s, e, n.pitch, n.velocity) for s, e, n in zip(starts, ends, part.notes)]
    duration = float(song.duration_seconds)
    spans = chords if chords is not None else song_chords(song, duration)
    return Music(str(midi), parts, [ChordSpan(float(c["start"]), float(c["end"]), str(c["label"])) for c in spans],
                 duration)


def song_chords(song, duration: float) -> list[dict]:
    """The chord symbols written in the file, as the engine's placement spans them."""
    from cuesmith.engine.pipelines.placement import chord_spans

    return chord_spans(song, duration)


def part_song(midi: str | Path, part_name: str):
    """The Song of `midi` with only the part `part_name` (its tempo map and chords kept)."""
    from dataclasses import replace

    from cuesmith.engine.music.midi_io import read_midi

    song = read_midi(midi)
    part = song.part(part_name)
    if part is None:
        raise CuesmithError(f"the MIDI has no part named {part_name!r}", midi)
    return replace(song, parts=[part])
