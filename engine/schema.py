"""The engine's requests and results: the versioned JSON of its jobs.

One source for the CLI, the OSC bridge and the GUI: each side builds a
request with `ScoreRequest.from_dict` and reads `ScoreResult.to_dict()`.
`schema_version` changes whenever a field changes meaning or goes away;
new optional fields keep the version. Version 2: result.json holds the
`placement` (every time a host needs, in seconds) and a variation's `midi`
may be null (audio-only families); version 1 files are still read.

Every request type lives here: ScoreRequest, CritiqueRequest,
AnalyzeRequest, DescribeRequest, TimelineRequest. `coerce` turns a request object, a dict or keywords into one.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Optional, Union, get_args, get_origin, get_type_hints

from .errors import CuesmithError
from .pipelines import FAMILIES  # noqa: F401  (the family table; extra families: pipelines.families())

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
DENSITIES = ("low", "mid", "high")
MODES = ("major", "minor")
MARKER_KINDS = ("cut", "section", "moment")
GRADE_COLOURS = {"A": "green", "B": "yellow", "C": "red"}
SECTION_COLOUR = "blue"


def _known(cls, values: dict) -> dict:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in values.items() if k in names}


def check_value_types(request_type: type, values: dict, kind: str) -> None:
    """Each known field holds a JSON value of its declared type (ints for int, finite numbers for float, ...):
    JSON from a socket may say "stems": "no"."""
    hints = get_type_hints(request_type)
    for name, value in values.items():
        if name in hints and not fits(value, hints[name]):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."  # a reply never grows
            raise CuesmithError(f"{kind} request: {name} must be {type_name(hints[name])}, got {shown}")


def fits(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if origin is Union:
        return any(fits(value, option) for option in get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, dict):
        return isinstance(value, origin)
    return True  # Any


def type_name(hint: Any) -> str:
    if get_origin(hint) is Union:
        return " or ".join(type_name(option) for option in get_args(hint))
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
             type(None): "null", list: "a list", dict: "an object"}
    return names.get(get_origin(hint) or hint, str(hint))


def _check_version(values: dict, what: str) -> None:
    version = values.get("schema_version", SCHEMA_VERSION)
    if version not in READABLE_VERSIONS:
        raise CuesmithError(f"{what} has schema_version {version}; this cuesmith reads "
                            f"{', '.join(map(str, READABLE_VERSIONS))}")


def coerce(request_type, request=None, **values):
    """A `request_type` from a request object, a dict, or keywords (keywords win over the other two)."""
    if isinstance(request, request_type):
        request = request.to_dict()
    elif request is not None and not isinstance(request, dict):
        raise CuesmithError(f"expected a {request_type.__name__} or a dict, got {type(request).__name__}")
    return request_type.from_dict({**(request or {}), **values})


class _Request:
    """What every request shares: JSON in and out, the version check, the one field it cannot do without."""
    KIND = "request"
    REQUIRED = ""  # a field that must not be empty
    MISSING = ""  # the error when it is

    def validate(self):
        if self.REQUIRED and not getattr(self, self.REQUIRED):
            raise CuesmithError(self.MISSING)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        _check_version(values, f"{cls.KIND} request")
        check_value_types(cls, values, cls.KIND)
        if cls.REQUIRED and not values.get(cls.REQUIRED):
            raise CuesmithError(cls.MISSING)
        return cls(**_known(cls, values)).validate()


@dataclass
class ScoreRequest(_Request):
    KIND = "score"

    video: str = ""  # one clip; or `clips`
    out_dir: str = ""  # the service fills it in under its output root when empty
    family: str = "vmusprod"
    variations: int = 1
    keep_best: bool = False  # critique every variation, keep only the best (critique.rank_variations)
    seed: int = 0
    tempo: Optional[float] = None  # BPM; None: from the video's motion
    mode: Optional[str] = None  # "major" | "minor"; None: from the video's colour
    density: Optional[str] = None  # "low" | "mid" | "high"; None: from the video's motion
    start: Optional[float] = None  # seconds of the file
    end: Optional[float] = None
    # None: the model's own (V-MusProd: per stage, tuned; models/vmusprod/manifest.json); given: every stage
    temperature: Optional[float] = None
    top_k: int = 0
    top_p: Optional[float] = None
    # True: the int8 decoders; False: fp32; None: the model's own (V-MusProd: its manifest's "default_int8")
    int8: Optional[bool] = None
    stems: bool = True
    # The music description for families that take a text prompt (mtm), used instead of their own;
    # other families (vmusprod, vidmuse) ignore it. None or "": the family's own description.
    describe: Optional[str] = None
    # A timeline scored as one piece: [{"video": path, "start": s, "end": s}, ...] in timeline order;
    # each clip boundary is a cut. `timeline` names the file they came from (EDL, XML, .otio), if any.
    # A timeline file alone is read by the engine (engine/timeline.py) into `clips`;
    # `media_dir` and `rate` as for TimelineRequest.
    clips: list[dict[str, Any]] = field(default_factory=list)
    timeline: Optional[str] = None
    media_dir: Optional[str] = None
    rate: Optional[float] = None
    schema_version: int = SCHEMA_VERSION

    def validate(self) -> "ScoreRequest":
        from .pipelines import families

        if bool(self.video) == bool(self.clips or self.timeline):
            raise CuesmithError("a score request needs either a video or a timeline (or its clips), not both")
        for clip in self.clips:
            if not isinstance(clip, dict) or not isinstance(clip.get("video"), str):
                raise CuesmithError('each clip needs a "video" path (and optional "start", "end" seconds)')
        if self.family not in families():
            raise CuesmithError(f"unknown model family {self.family!r} (expected {', '.join(families())})")
        if not 1 <= self.variations <= 16:
            raise CuesmithError(f"variations must be 1..16, got {self.variations}")
        if self.tempo is not None and not 30 <= self.tempo <= 300:
            raise CuesmithError(f"tempo must be 30..300 BPM, got {self.tempo}")
        if self.mode is not None and self.mode not in MODES:
            raise CuesmithError(f"mode must be major or minor, got {self.mode!r}")
        if self.density is not None and self.density not in DENSITIES:
            raise CuesmithError(f"density must be low, mid or high, got {self.density!r}")
        if self.describe is not None and not isinstance(self.describe, str):
            raise CuesmithError(f"describe must be text (a music description), got {type(self.describe).__name__}")
        if (self.temperature is not None and self.temperature < 0) or self.top_k < 0 or \
                (self.top_p is not None and not 0 < self.top_p <= 1):
            raise CuesmithError("sampling needs temperature >= 0, 0 < top_p <= 1, top_k >= 0")
        return self


@dataclass
class CritiqueRequest(_Request):
    """Critique `music` (MIDI or audio; empty: the clip's own audio track) against `video`."""
    KIND, REQUIRED, MISSING = "critique", "video", "a critique request needs a video"
    video: str = ""
    music: str = ""
    out_dir: str = ""  # the service fills it in under its output root when empty
    notes: str = ""  # what the clip is about
    start: Optional[float] = None
    end: Optional[float] = None
    schema_version: int = SCHEMA_VERSION


@dataclass
class AnalyzeRequest(_Request):
    """Analyse `video` (cuts, motion, colour, tempo range); analysis.json goes to out_dir."""
    KIND, REQUIRED, MISSING = "analyze", "video", "an analyze request needs a video"
    video: str = ""
    start: Optional[float] = None
    end: Optional[float] = None
    out_dir: str = ""
    schema_version: int = SCHEMA_VERSION


@dataclass
class DescribeRequest(_Request):
    """A music-video description of `music` (MIDI or audio); description.json/.md and cuts.otio/.edl go to out_dir."""
    KIND, REQUIRED, MISSING = "describe", "music", "a describe request needs the music"
    music: str = ""
    lyrics: str = ""  # .lrc (timed lines) or plain text
    tags: str = ""  # genre, MV type, other tags: "ballad, story narrative"
    out_dir: str = ""
    schema_version: int = SCHEMA_VERSION


@dataclass
class TimelineRequest(_Request):
    """A timeline file to read (EDL, FCP7 XML, FCPXML, .otio); `media_dir`: where to look for its media;
    `rate`: an EDL's frame rate (default: its first clip's media)."""
    KIND, REQUIRED, MISSING = "timeline", "timeline", "a timeline request needs a timeline file"
    timeline: str = ""
    media_dir: Optional[str] = None
    rate: Optional[float] = None
    schema_version: int = SCHEMA_VERSION


@dataclass
class VariationResult:
    midi: Optional[str]  # path; None for a family that writes audio only
    notes_per_bar: float
    key: str  # detected from the generated notes, e.g. "A minor" ("" for audio only)
    parts: dict[str, int]  # part name -> note count
    stems: dict[str, str] = field(default_factory=dict)  # name -> WAV path (first variation only)
    description: Optional[str] = None  # the text it was conditioned on (text-prompted families), else None


@dataclass
class Marker:
    """A point on the score's clock for a host's timeline: a cut, a section start, a graded moment."""
    time: float  # seconds from the score's start
    kind: str  # one of MARKER_KINDS
    name: str  # "cut A", "motion peak C", "section 2"
    grade: Optional[str] = None  # "A" | "B" | "C" (critique key moments), None for sections
    colour: str = SECTION_COLOUR  # GRADE_COLOURS by grade; SECTION_COLOUR for sections
    note: str = ""  # what the critique saw there, in words


@dataclass
class Placement:
    """Everything a host (CLI, server, panel, timeline writer, editor and DAW scripts) needs to put the score
    on its timeline, in seconds from the score's start: files, beats, sections, chords, markers."""
    duration: float
    tempo: float  # BPM of the first bar
    key: str
    midi: Optional[str] = None  # the chosen variation's MIDI (None before save, or for audio only)
    audio: dict[str, Any] = field(default_factory=lambda: {"mix": None, "stems": {}})  # paths once saved
    beats: list[float] = field(default_factory=list)
    downbeats: list[float] = field(default_factory=list)
    sections: list[dict[str, Any]] = field(default_factory=list)  # {"bar", "time", "label"}
    chords: list[dict[str, Any]] = field(default_factory=list)  # {"start", "end", "label"}
    markers: list[Marker] = field(default_factory=list)

    @property
    def media(self) -> Optional[str]:
        """What goes on a timeline's audio track: the mix, else the MIDI."""
        return self.audio.get("mix") or self.midi

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Placement":
        kept = _known(cls, values)
        kept["markers"] = [Marker(**_known(Marker, m)) for m in values.get("markers", [])]
        return cls(**kept)


@dataclass
class ScoreResult:
    request: ScoreRequest
    duration: float  # seconds scored
    tempo: float  # BPM of the plan's first bar
    key: str  # the plan's key
    n_bars: int
    cut_times: list[float]
    section_bars: list[int]
    variations: list[VariationResult]
    model: dict[str, Any]  # family, folder, manifest id, graphs used
    providers: dict[str, str]  # stage -> execution provider
    timings: dict[str, float]  # seconds per step of the job
    result_json: str = ""
    critique: dict[str, Any] = field(default_factory=dict)  # critique.json/.md paths, overall, per-dimension scores
    placement: Optional[Placement] = None  # None only in version 1 files
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ScoreResult":
        _check_version(values, "score result")
        kept = _known(cls, values)
        # not validated: what ran is read back even where its family is not registered (a panel, a host)
        kept["request"] = ScoreRequest(**_known(ScoreRequest, values["request"]))
        kept["variations"] = [VariationResult(**_known(VariationResult, v)) for v in values["variations"]]
        if values.get("placement"):
            kept["placement"] = Placement.from_dict(values["placement"])
        return cls(**kept)

    def summary(self) -> str:
        lines = [f"scored {self.duration:.1f} s: {self.n_bars} bars at {self.tempo:.0f} BPM, {self.key}, "
                 f"sections at bars {', '.join(str(b + 1) for b in self.section_bars) or '-'}"]
        for i, v in enumerate(self.variations):
            what = f"{v.midi} ({v.notes_per_bar:.1f} notes/bar, {v.key})" if v.midi else "audio"
            lines.append(f"  variation {i + 1}: {what}")
            lines += [f"    stem {name}: {path}" for name, path in v.stems.items()]
            if v.description is not None:
                lines.append(f"    description: {v.description}")
        if self.critique:
            overall = self.critique.get("overall")
            lines.append(f"critique: {overall:.1f}/10 overall" if overall is not None else "critique: not scored")
            lines[-1] += f", key moments {self.critique.get('key_moments') or '-'} ({self.critique['markdown']})"
        providers = sorted(set(self.providers.values()))
        lines.append(f"ran on {', '.join(providers)} in {self.timings.get('total', 0.0):.2f} s")
        return "\n".join(lines)
