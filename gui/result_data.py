"""What the result view shows, read from a job's result file (no Qt here).

A score job's `result.json` (engine/schema.py `ScoreResult`) or a critique
job's `critique.json` (engine/critique/report.py) becomes one `ResultData`:
the critique's dimensions and key moments, the clip's cuts, the music's beats
and changes, the notes of each part and the chords for the piano roll, the
stems for the audio preview. Anything missing or of the wrong shape is a
`CuesmithError` naming the file, so the panel can say so and keep working.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from cuesmith.engine.errors import CuesmithError

DIMENSIONS = ("rhythm", "emotion", "theme", "culture")
TITLES = {"rhythm": "Rhythm & synchronization", "theme": "Theme & content", "emotion": "Emotion",
          "culture": "Culture"}
MIDI_SUFFIXES = (".mid", ".midi")


@dataclass
class Dimension:
    name: str
    title: str
    score: Optional[float]  # 1..10; None: not assessed
    labels: dict[str, str]
    prose: str


@dataclass
class KeyMoment:
    time: float  # seconds of the clip
    kind: str  # "cut", ...
    grade: str  # "A" | "B" | "C"
    offset: Optional[float]  # seconds from the moment to the nearest musical change
    change: Optional[str]


@dataclass
class Critique:
    overall: Optional[float]
    dimensions: list[Dimension]
    key_moments: list[KeyMoment]
    beats: list[float]
    downbeats: list[float]
    prose_source: str = "template"


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
    """The notes of a MIDI file in seconds, per part, with its chords and changes."""

    path: str
    parts: dict[str, list[NoteSpan]]
    chords: list[ChordSpan]
    changes: list[tuple[float, str]]  # (seconds, "harmony" | "texture" | "accent"): critique/changes.py
    duration: float


@dataclass
class Variation:
    midi: str
    key: str
    notes_per_bar: float
    stems: dict[str, str]
    overall: Optional[float] = None  # critique score, when one is known


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
    music: Optional[Music]
    music_file: str  # the MIDI or audio the critique judged ("" for a score's own MIDI)
    stems: dict[str, str]  # name -> WAV (the first variation's), "mix" first
    variations: list[Variation] = field(default_factory=list)
    tempo: Optional[float] = None
    key: str = ""
    request: dict[str, Any] = field(default_factory=dict)

    @property
    def midi(self) -> str:
        if self.variations:
            return self.variations[0].midi
        return self.music_file if self.music_file.lower().endswith(MIDI_SUFFIXES) else ""


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
    variations = [Variation(v.midi, v.key, float(v.notes_per_bar), dict(v.stems)) for v in result.variations]
    critique_file = result.critique.get("json") if result.critique else None
    critique = load_critique(Path(critique_file)) if critique_file else None
    if variations and critique is not None:
        variations[0].overall = critique.overall
    request = result.request
    return ResultData(
        kind="score", path=str(path), video=request.video or (request.clips[0]["video"] if request.clips else ""),
        start=request.start, end=request.end, duration=float(result.duration),
        cut_times=[float(t) for t in result.cut_times], critique=critique,
        music=load_music(variations[0].midi) if variations else None, music_file="",
        stems=ordered_stems(variations[0].stems if variations else {}), variations=variations,
        tempo=float(result.tempo), key=result.key, request=request.to_dict())


def critique_result(path: Path, values: dict) -> ResultData:
    critique = parse_critique(values)
    music_file = str(values.get("music") or "")
    video = values["measurements"]["video"]
    music = load_music(music_file) if music_file.lower().endswith(MIDI_SUFFIXES) else None
    playable = music_file if music_file and Path(music_file).is_file() and music is None else ""
    return ResultData(
        kind="critique", path=str(path), video=str(values.get("video", "")), start=None, end=None,
        duration=float(values.get("duration", video.get("duration", 0.0))),
        cut_times=[float(t) for t in video.get("cuts", [])], critique=critique, music=music,
        music_file=music_file, stems={"music": playable} if playable else {},
        tempo=values["measurements"].get("music", {}).get("tempo"),
        key=values["measurements"].get("music", {}).get("key") or "")


def load_critique(path: Path) -> Critique:
    values = read_json(path)
    try:
        return parse_critique(values)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CuesmithError(f"malformed critique: {describe(error)}", path) from None


def parse_critique(values: dict) -> Critique:
    if values.get("schema") != "cuesmith.critique":
        raise ValueError("not a cuesmith critique")
    prose = values.get("prose") or {}
    dimensions = []
    for d in values["dimensions"]:
        name = str(d["name"])
        score = d.get("score")
        dimensions.append(Dimension(name, TITLES.get(name, name.title()), None if score is None else float(score),
                                    {str(k): str(v) for k, v in d.get("labels", {}).items()},
                                    str(prose.get(name, ""))))
    dimensions.sort(key=lambda d: DIMENSIONS.index(d.name) if d.name in DIMENSIONS else len(DIMENSIONS))
    moments = [KeyMoment(float(m["time"]), str(m.get("kind", "cut")), str(m["grade"]), m.get("offset"),
                         m.get("change")) for m in values.get("key_moments", [])]
    for moment in moments:
        if moment.grade not in ("A", "B", "C"):
            raise ValueError(f"key moment grade {moment.grade!r} is not A, B or C")
    music = values.get("measurements", {}).get("music", {})
    overall = values.get("overall")
    return Critique(overall=None if overall is None else float(overall), dimensions=dimensions,
                    key_moments=moments, beats=[float(b) for b in music.get("beats", [])],
                    downbeats=[float(b) for b in music.get("downbeats", [])],
                    prose_source=str(values.get("prose_source", "template")))


def load_music(midi: str | Path) -> Music:
    """Notes (seconds) per part, chord symbols and musical changes of a MIDI file."""
    import numpy as np

    from cuesmith.engine.critique.music import facts_from_song
    from cuesmith.engine.music.midi_io import read_midi
    from cuesmith.engine.music.render import tick_seconds
    from cuesmith.engine.music.score import PITCH_CLASSES

    song = read_midi(midi)

    def seconds(ticks) -> list[float]:
        return [float(s) for s in tick_seconds(song, np.asarray(ticks, dtype=np.float64))] if len(ticks) else []

    parts = {}
    for part in song.parts:
        starts, ends = seconds([n.start for n in part.notes]), seconds([n.end for n in part.notes])
        parts[part.name or f"part {len(parts) + 1}"] = [
            NoteSpan(s, e, n.pitch, n.velocity) for s, e, n in zip(starts, ends, part.notes)]
    named = [c for c in song.chords if not c.is_none]
    chord_starts, chord_ends = seconds([c.start for c in named]), seconds([c.end for c in named])
    chords = [ChordSpan(s, e, PITCH_CLASSES[c.root] + ("" if c.quality == "M" else c.quality))
              for s, e, c in zip(chord_starts, chord_ends, named)]
    has_notes = any(parts.values())
    changes = [(c.time, c.kind) for c in facts_from_song(song, str(midi)).changes] if has_notes else []
    return Music(str(midi), parts, chords, changes, float(song.duration_seconds))


def ordered_stems(stems: dict[str, str]) -> dict[str, str]:
    return dict(sorted(stems.items(), key=lambda item: (item[0] != "mix", item[0])))


def part_song(midi: str | Path, part_name: str):
    """The Song of `midi` with only the part `part_name` (its tempo map and chords kept)."""
    from dataclasses import replace

    from cuesmith.engine.music.midi_io import read_midi

    song = read_midi(midi)
    part = song.part(part_name)
    if part is None:
        raise CuesmithError(f"the MIDI has no part named {part_name!r}", midi)
    return replace(song, parts=[part])
