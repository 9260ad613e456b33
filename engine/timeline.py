"""Timelines in and out: EDL, FCP7 XML, FCPXML and .otio through OpenTimelineIO's adapters.

Reading: the enabled video tracks, flattened (the top track wins where clips
overlap), in timeline order. Each clip's media is found from its media
reference (relative paths resolve against the timeline's folder), or, for an
EDL event without `* FROM CLIP:`/`* FROM FILE:`, from a `* SOURCE FILE:`
comment, the `* FROM CLIP NAME:` name, or the reel name; every candidate is
also looked up in `media_dir` (by file name, and with any extension for a
bare name). A clip's source range becomes seconds of its media file: the media
reference's available range gives the media's time origin; without one (an
EDL), a source timecode at or after the file's own start timecode (the
"timecode" tag of camera media) counts from it, else from the file start.
An EDL carries no frame rate: `rate`, else its first clip's media's.

Gaps (and black slugs, `BL` events) between clips are held: the score runs
on through them, the picture measures of the clip before are held, and the
next clip's first frame is a cut. Transitions are treated as cuts at the clip
boundary. The score starts at the first clip's record start; any lead-in
before it is not scored.

Writing back: the same timeline with one audio track added (the rendered mix
when the score has stems, else the MIDI file), starting at the first clip's
record start, and markers on that audio clip (in its own time): the markers of
the result's placement, as the engine placed them (the critique's key moments
"cut A", "motion peak C", ... and the section starts "section 2", ...). An EDL keeps its video events and gets the
score as an audio event; the adapter writes one track per list, so an EDL's
own audio events are not carried over.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

import opentimelineio as otio
from opentimelineio import opentime, schema

from .errors import CuesmithError
from .files import unused_path, write_bytes_atomic

ADAPTERS = {".edl": "cmx_3600", ".xml": "fcp_xml", ".fcpxml": "fcpx_xml", ".otio": "otio_json"}
FORMAT_NAMES = "EDL (.edl), FCP7 XML (.xml), FCPXML (.fcpxml) or OpenTimelineIO (.otio)"
EDL_PROBE_RATE = 60  # reads any EDL timecode; the real rate comes from the media (or `rate`)


@dataclass
class TimelineClip:
    name: str
    media: Path  # absolute
    source_start: float  # seconds of the media file
    source_end: float
    record_start: float  # seconds on the timeline's clock (global start included)
    record_end: float


@dataclass
class Timeline:
    path: Path
    name: str
    format: str  # the OTIO adapter: cmx_3600, fcp_xml, fcpx_xml, otio_json
    rate: float  # frames per second
    global_start: float  # seconds; the timeline's declared start (0 when it declares none)
    clips: list[TimelineClip] = field(default_factory=list)

    @property
    def start(self) -> float:
        """Where the score starts: the first clip's record start."""
        return self.clips[0].record_start

    @property
    def end(self) -> float:
        return self.clips[-1].record_end

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def global_start_frames(self) -> int:
        return int(round(self.global_start * self.rate))

    def clip_dicts(self) -> list[dict]:
        """ScoreRequest.clips: file range plus the record start relative to the first clip (for gaps)."""
        return [{"video": str(c.media), "start": round(c.source_start, 6), "end": round(c.source_end, 6),
                 "record_start": round(c.record_start - self.start, 6), "name": c.name} for c in self.clips]


# -- reading --------------------------------------------------------------------------------------------

def read_timeline(path: str | Path, media_dir: str | Path | None = None,
                  rate: Optional[float] = None) -> Timeline:
    """The video clips of a timeline file, media resolved; `rate` only matters for EDLs (no rate inside)."""
    path = Path(path)
    media_dir = Path(media_dir) if media_dir else None
    if media_dir is not None and not media_dir.is_dir():
        raise CuesmithError("is not a folder (--media-dir)", media_dir)
    adapter = adapter_for(path)
    if adapter == "cmx_3600" and rate is None:
        rate = edl_rate(path, media_dir)
    timeline = load(path, adapter, rate)
    items, offset = video_items(timeline, path)
    clips = [resolve_clip(item, record, path, media_dir) for item, record in items]
    global_start = timeline.global_start_time.to_seconds() if timeline.global_start_time else 0.0
    for clip in clips:
        clip.record_start += global_start + offset
        clip.record_end += global_start + offset
    return Timeline(path, timeline.name or path.stem, adapter, timeline_rate(timeline, rate), global_start, clips)


def clips_for_timeline(path: str | Path, media_dir: str | Path | None = None) -> list[dict]:
    """[{"video": abs path, "start": s, "end": s, "record_start": s, "name": ...}, ...] for a ScoreRequest."""
    return read_timeline(path, media_dir).clip_dicts()


def adapter_for(path: Path) -> str:
    adapter = ADAPTERS.get(path.suffix.lower())
    if adapter is None:
        raise CuesmithError(f"is not a timeline cuesmith reads; give an {FORMAT_NAMES}", path)
    if not path.is_file():
        raise CuesmithError("no such timeline file" if not path.exists() else "is not a file", path)
    return adapter


def load(path: Path, adapter: str, rate: Optional[float], probe: bool = False) -> otio.schema.Timeline:
    """`probe`: an EDL read at a guessed rate only to learn its media names (durations may not match)."""
    options = {"rate": rate, "ignore_timecode_mismatch": probe} if adapter == "cmx_3600" else {}
    try:
        timeline = otio.adapters.read_from_file(str(path), adapter_name=adapter, **options)
    except Exception as error:  # the adapters raise anything from ValueError to ParseError
        # not the adapter's message: it may quote a line of the file, and this error can go to a network client
        raise CuesmithError(f"cannot be read as {adapter.replace('_', ' ')} ({type(error).__name__})", path) from None
    if isinstance(timeline, otio.schema.SerializableCollection):  # FCP XML with several sequences
        timelines = list(timeline.find_children(descended_from_type=otio.schema.Timeline, shallow_search=True))
        if not timelines:
            raise CuesmithError("contains no sequence", path)
        timeline = timelines[0]
    if not isinstance(timeline, otio.schema.Timeline):
        raise CuesmithError(f"holds a {type(timeline).__name__}, not a timeline", path)
    return timeline


def first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def edl_rate(path: Path, media_dir: Optional[Path]) -> float:
    """An EDL carries no frame rate: take its first clip's media's (24 when FFmpeg finds none)."""
    timeline = load(path, "cmx_3600", EDL_PROBE_RATE, probe=True)
    first = video_items(timeline, path)[0][0][0]
    fps = media_fps(located_media(first, path, media_dir))
    return timecode_rate(fps) if fps else 24.0


def media_fps(media: Path) -> Optional[float]:
    import av

    try:
        with av.open(str(media), metadata_errors="ignore") as container:
            stream = container.streams.video[0] if container.streams.video else None
            rate = stream and (stream.average_rate or stream.guessed_rate)
            return float(rate) if rate else None
    except av.error.FFmpegError:
        return None


def timecode_rate(fps: float) -> float:
    """NTSC rates keep their fraction (29.97 -> 30000/1001, read as drop/non-drop timecode by OTIO)."""
    for nominal in (24, 30, 60):
        if abs(fps - nominal * 1000 / 1001) < 0.01:
            return nominal * 1000 / 1001
    return float(round(fps))


def timeline_rate(timeline, rate: Optional[float]) -> float:
    if rate:
        return float(rate)
    for clip in timeline.find_clips():
        return float(clip.trimmed_range().duration.rate)
    return float(timeline.duration().rate)


def video_items(timeline, path: Path) -> tuple[list[tuple[schema.Clip, opentime.TimeRange]], float]:
    """(clip, record range in the track) for the video clips, and the track's offset in the stack (seconds)."""
    tracks = [t for t in timeline.video_tracks() if t.enabled]
    if not tracks:
        raise CuesmithError("has no video track", path)
    track = tracks[0] if len(tracks) == 1 else otio.algorithms.flatten_stack(tracks)
    offset = -tracks[0].source_range.start_time.to_seconds() if tracks[0].source_range else 0.0
    items = [(c, c.range_in_parent()) for c in track if isinstance(c, schema.Clip) and c.enabled
             and not is_black(c)]
    if not items:
        raise CuesmithError("has no video clips (the video tracks are empty)", path)
    return items, offset


def is_black(clip: schema.Clip) -> bool:
    ref = clip.media_reference
    return isinstance(ref, schema.GeneratorReference) and ref.generator_kind.lower() in ("black", "solid")


def resolve_clip(clip: schema.Clip, record: opentime.TimeRange, path: Path, media_dir: Optional[Path]
                 ) -> TimelineClip:
    media = located_media(clip, path, media_dir)
    source = clip.trimmed_range()
    origin = media_origin(clip) if has_available_range(clip) else timecode_origin(media, source.start_time)
    start = source.start_time.to_seconds() - origin
    end = start + source.duration.to_seconds()
    if start < -1e-6:
        raise CuesmithError(f"clip {clip.name!r} starts before its media ({start:.3f} s)", path)
    return TimelineClip(clip.name, media.resolve(), max(0.0, start), end, record.start_time.to_seconds(),
                        record.end_time_exclusive().to_seconds())


def located_media(clip: schema.Clip, path: Path, media_dir: Optional[Path]) -> Path:
    media = find_media(clip, path, media_dir)
    if media is None or not media.is_file():
        tried = f" (tried {media})" if media is not None else ""
        raise CuesmithError(f"clip {clip.name!r}: media not found{tried}", path,
                            "give the folder with --media-dir" if media_dir is None else None)
    return media


def has_available_range(clip: schema.Clip) -> bool:
    return getattr(clip.media_reference, "available_range", None) is not None


def media_origin(clip: schema.Clip) -> float:
    """Seconds of media time at the file's first frame (a start timecode), from the available range."""
    return clip.media_reference.available_range.start_time.to_seconds()


def timecode_origin(media: Path, source_start: opentime.RationalTime) -> float:
    """The media file's start timecode in seconds when the source range is in timecode (starts at or after
    it, as an EDL's source timecode of camera media does); 0 when the range counts from the file start."""
    tag = media_timecode(media)
    try:
        origin = opentime.from_timecode(tag, source_start.rate).to_seconds() if tag else 0.0
    except ValueError:  # a timecode at another rate than the timeline's: count from the file start
        return 0.0
    return origin if source_start.to_seconds() >= origin - 1e-6 else 0.0


def media_timecode(media: Path) -> Optional[str]:
    """The "timecode" tag of a stream (a QuickTime tmcd track, MXF) or of the container."""
    import av

    try:
        with av.open(str(media), metadata_errors="ignore") as container:
            tags = [*(s.metadata for s in container.streams), container.metadata]
    except av.error.FFmpegError:
        return None
    return next((t["timecode"] for t in tags if t.get("timecode")), None)


def find_media(clip: schema.Clip, path: Path, media_dir: Optional[Path]) -> Optional[Path]:
    """The first candidate that exists; else the first path tried (for the error); None: nothing to try."""
    ref = clip.media_reference
    if isinstance(ref, schema.ExternalReference):
        names = [file_path(ref.target_url or "", clip, path)]
    elif isinstance(ref, schema.MissingReference):
        names = edl_names(clip)
    else:
        raise CuesmithError(f"clip {clip.name!r} is a {type(ref).__name__} ({getattr(ref, 'generator_kind', '')})"
                            "; only clips of media files can be scored".replace(" ()", ""), path)
    tried = []
    for name in names:
        for candidate in candidates(name, path.resolve().parent, media_dir):
            if candidate.is_file():
                return candidate
            tried.append(candidate)
    return tried[0] if tried else None


def file_path(url: str, clip: schema.Clip, path: Path) -> str:
    scheme = urlparse(url).scheme
    if scheme == "file":
        return otio.url_utils.filepath_from_url(url)
    if scheme and len(scheme) > 1:  # one letter: a Windows drive
        raise CuesmithError(f"clip {clip.name!r} refers to {url}; only local files can be scored", path)
    if not url:
        raise CuesmithError(f"clip {clip.name!r} has an empty media path", path)
    return url


def edl_names(clip: schema.Clip) -> list[str]:
    meta = clip.metadata.get("cmx_3600", {})
    names = [m.group(1).strip() for c in meta.get("comments", [])
             if (m := re.match(r"SOURCE FILE:\s*(.+)", c, re.IGNORECASE))]
    names += [n for n in (clip.name, meta.get("reel")) if n and not re.fullmatch(r"\d+", n)]
    return names


def candidates(name: str, timeline_dir: Path, media_dir: Optional[Path]) -> list[Path]:
    path = Path(name)
    found = [path if path.is_absolute() else timeline_dir / path]
    if media_dir is not None:
        found.append(media_dir / path.name)
        if not path.suffix:  # a reel or clip name: any file of that stem
            found += sorted(p for p in media_dir.glob(f"{glob_escape(path.name)}.*") if p.is_file())
    return found


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


# -- writing back -------------------------------------------------------------------------------------------

def write_scored_timeline(timeline_path: str | Path, result, out_dir: str | Path,
                          media_dir: str | Path | None = None, rate: Optional[float] = None) -> Path:
    """The timeline with the score as an audio track and its key moments and sections as markers, in the
    input's format, written to `out_dir` as <name>-scored<ext> (never over an existing file).
    `media_dir`, `rate`: as for `read_timeline` (an EDL's rate comes from its media)."""
    path = Path(timeline_path)
    adapter = adapter_for(path)
    if adapter == "cmx_3600" and rate is None:
        rate = scored_rate(result) or edl_rate(path, Path(media_dir) if media_dir else None)
    timeline = load(path, adapter, rate)
    rate = timeline_rate(timeline, rate)
    items, offset = video_items(timeline, path)
    first = items[0][1].start_time.to_seconds() + offset  # stack time of the first clip
    absolute_media(timeline, path)
    score = score_clip(result, rate, path.stem)
    add_markers(score, result, rate)
    add_score_track(timeline, score, first, rate)
    text = to_string(timeline, adapter, rate)
    out = unused_path(Path(out_dir) / f"{path.stem}-scored{path.suffix.lower()}")
    return write_bytes_atomic(out, text.encode("utf-8"))


def absolute_media(timeline, path: Path) -> None:
    """Relative media paths made absolute: the scored timeline is written to another folder."""
    for clip in timeline.find_clips():
        ref = clip.media_reference
        url = getattr(ref, "target_url", None) or ""
        if isinstance(ref, schema.ExternalReference) and url and not urlparse(url).scheme \
                and not Path(url).is_absolute() and (path.parent / url).is_file():
            ref.target_url = str((path.parent / url).resolve())


def scored_rate(result) -> Optional[float]:
    """The frame rate of the first clip that was scored (an EDL's timecode rate)."""
    clips = result.request.clips
    fps = media_fps(Path(clips[0]["video"])) if clips and Path(clips[0]["video"]).is_file() else None
    return timecode_rate(fps) if fps else None


def score_media(result) -> Path:
    media = placement_of(result).media
    if not media:
        raise CuesmithError("the score has no MIDI or audio file to put on the timeline")
    return Path(media).resolve()


def placement_of(result):
    if result.placement is None:
        raise CuesmithError("the result has no placement (written by an older cuesmith); score it again")
    return result.placement


def score_clip(result, rate: float, name: str) -> schema.Clip:
    media = score_media(result)
    length = opentime.RationalTime(round(result.duration * rate), rate)
    span = opentime.TimeRange(opentime.RationalTime(0, rate), length)
    reference = schema.ExternalReference(target_url=otio.url_utils.url_from_filepath(str(media)),
                                         available_range=span)
    return schema.Clip(name=f"{name} score", media_reference=reference, source_range=span)


def add_markers(clip: schema.Clip, result, rate: float) -> None:
    markers = [marker(m.name, m.time, rate, m.colour.upper()) for m in placement_of(result).markers]
    clip.markers.extend(sorted(markers, key=lambda m: m.marked_range.start_time.value))


def marker(name: str, seconds: float, rate: float, colour: str) -> schema.Marker:
    at = opentime.TimeRange(opentime.RationalTime(round(seconds * rate), rate), opentime.RationalTime(0, rate))
    return schema.Marker(name=name, marked_range=at, color=colour)


def add_score_track(timeline, clip: schema.Clip, start: float, rate: float) -> None:
    track = schema.Track(name="cuesmith score", kind=schema.TrackKind.Audio)
    lead = opentime.RationalTime(round(start * rate), rate)
    if lead.value > 0:
        track.append(schema.Gap(source_range=opentime.TimeRange(opentime.RationalTime(0, rate), lead)))
    track.append(clip)
    timeline.tracks.append(track)


def to_string(timeline, adapter: str, rate: float) -> str:
    if adapter == "cmx_3600":
        return edl_string(timeline, rate)
    try:
        return otio.adapters.write_to_string(timeline, adapter_name=adapter)
    except Exception as error:
        raise CuesmithError(f"the scored timeline cannot be written as {adapter}: {first_line(error)}") from None


def edl_string(timeline, rate: float) -> str:
    """The video events, then the score's audio event, numbered on: the EDL adapter writes one track per list."""
    video = next(t for t in timeline.video_tracks() if t.enabled)
    score = timeline.tracks[-1]
    for clip in score.find_clips():  # an EDL names files by path, not URL
        clip.media_reference.target_url = otio.url_utils.filepath_from_url(clip.media_reference.target_url)
    texts = []
    for track, other in ((video, score), (score, video)):
        # the adapter writes the first track only, and wants exactly one video track in the timeline
        part = schema.Timeline(name=timeline.name, tracks=[copy.deepcopy(track), copy.deepcopy(other)])
        try:
            texts.append(otio.adapters.write_to_string(part, adapter_name="cmx_3600", rate=rate))
        except Exception as error:
            raise CuesmithError(f"the scored EDL cannot be written: {first_line(error)}") from None
    events = len(re.findall(r"^\d{3,}\s", texts[0], re.MULTILINE))
    audio = re.sub(r"\ATITLE:.*\n\n?", "", texts[1])
    audio = re.sub(r"^(\d{3,})(?=\s)", lambda m: f"{int(m.group(1)) + events:03d}", audio, flags=re.MULTILINE)
    return texts[0] + audio
