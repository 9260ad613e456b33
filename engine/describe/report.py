"""description.json (schema `cuesmith.description`), description.md, and the suggested cuts as
cuts.otio and cuts.edl (CMX 3600), written with OpenTimelineIO for an editor to import.

The cut timeline: video track "suggested shots" with one placeholder clip per
shot (from one cut to the next; a cut is a beat of the analysis rounded to the
nearest frame at `fps`), and audio track "music" holding the music file with a
marker at every cut. The EDL carries the video track only (CMX 3600 has no
markers on audio). No file is ever replaced: a taken name gets -2, -3, ...
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..critique.moments import clock
from ..files import atomic_path, unused_path, write_bytes_atomic, write_json_atomic
from .describe import Description


@dataclass
class DescriptionFiles:
    json: Path
    markdown: Path
    otio: Optional[Path]  # None where OpenTimelineIO is not installed
    edl: Optional[Path]


def markdown(d: Description) -> str:
    a, o = d.analysis, d.overview
    tempo = f"{a.tempo:.0f} BPM" if a.tempo else "no steady beat"
    lines = [f"# Music-video description: {Path(a.source).name or a.title}", "", o.text, "",
             "| | |", "| --- | --- |",
             f"| length | {clock(a.duration)} |", f"| tempo | {tempo} |", f"| key | {a.key or 'unclear'} |",
             f"| genre | {o.genre} ({o.genre_source}, confidence {o.genre_confidence:.2f}) |",
             f"| MV type | {o.mv_type} ({o.mv_type_source}: {o.mv_type_reason}) |",
             f"| mood | {o.mood} (valence {o.valence:.2f}, arousal {o.arousal:.2f}) |",
             f"| mood arc | {' → '.join(o.mood_arc)} |", f"| visual style | {o.visual_style} |"]
    if o.themes:
        lines.append(f"| lyric themes | {', '.join(o.themes)} |")
    if a.problems:
        lines += ["", "**Could not fully analyse:**", *[f"- {p}" for p in a.problems]]
    lines += ["", "## Sections", "", "| section | from | to | energy | mood | visual idea |",
              "| --- | --- | --- | --- | --- | --- |"]
    for s in a.sections:
        lines.append(f"| {s.name} | {clock(s.start)} | {clock(s.end)} | {s.energy:.2f} | {s.mood} | "
                     f"{_cell(d.section_ideas.get(s.name, ''))} |")
    lines += ["", f"## Every {d.windows[1].start - d.windows[0].start if len(d.windows) > 1 else 2:g} seconds", "",
              "| time | music | shot · camera | cuts | lyrics |", "| --- | --- | --- | --- | --- |"]
    for w in d.windows:
        lines.append(f"| {clock(w.start)}–{clock(w.end)} | {_cell(w.music)} | {_cell(w.shot)} · {w.camera} | "
                     f"{', '.join(clock(c) for c in w.cuts)} | {_cell(' / '.join(w.lyrics))} |")
    source = "a local language model" if d.prose_source == "llm" else "the template"
    lines += ["", f"_{len(d.cuts)} suggested cuts, all on beats (cuts.otio / cuts.edl). Prose by {source}."
              + (f" {d.prose_note}_" if d.prose_note else "_")]
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def cut_timeline(d: Description, fps: float):
    """An OTIO Timeline of the suggested shots over the music (see the module docstring)."""
    import opentimelineio as otio

    a = d.analysis
    rate = float(fps)
    frame = lambda seconds: int(round(seconds * rate))  # noqa: E731
    edges = [0] + [frame(c.time) for c in d.cuts] + [frame(a.duration)]
    timeline = otio.schema.Timeline(name=f"suggested cuts: {Path(a.source).name}")
    timeline.global_start_time = otio.opentime.RationalTime(0, rate)
    video = otio.schema.Track(name="suggested shots", kind=otio.schema.TrackKind.Video)
    for i, (start, end) in enumerate(zip(edges[:-1], edges[1:])):
        if end <= start:
            continue
        shot = d.shots[i]
        clip = otio.schema.Clip(name=f"shot {shot.number:03d} {shot.section}",
                                media_reference=otio.schema.MissingReference(),
                                source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate),
                                                                     otio.opentime.RationalTime(end - start, rate)))
        clip.metadata["cmx_3600"] = {"reel": f"SHOT{shot.number:03d}"}  # an EDL reel: one word, at most 8 characters
        clip.metadata["cuesmith"] = {"framing": shot.framing}
        video.append(clip)
    audio = otio.schema.Track(name="music", kind=otio.schema.TrackKind.Audio)
    span = otio.opentime.TimeRange(otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(edges[-1], rate))
    music = otio.schema.Clip(name=Path(a.source).name or "music", source_range=span,
                             media_reference=otio.schema.ExternalReference(
                                 target_url=Path(a.source).absolute().as_uri() if a.source != "song" else "",
                                 available_range=span))
    for n, cut in enumerate(d.cuts):
        music.markers.append(otio.schema.Marker(
            name=f"cut {n + 1}: {cut.section} ({cut.reason})",
            marked_range=otio.opentime.TimeRange(otio.opentime.RationalTime(frame(cut.time), rate),
                                                 otio.opentime.RationalTime(0, rate))))
    audio.append(music)
    timeline.tracks.extend([video, audio])
    return timeline


def write_cuts(d: Description, out: Path, fps: float) -> tuple[Optional[Path], Optional[Path]]:
    try:
        import opentimelineio as otio
    except ImportError:
        d.prose_note = (d.prose_note + "; " if d.prose_note else "") + \
            "OpenTimelineIO is not installed (pip install 'cuesmith[timeline]'): no cuts.otio/cuts.edl"
        return None, None
    timeline = cut_timeline(d, fps)
    otio_path = unused_path(out / "cuts.otio")
    with atomic_path(otio_path) as tmp:
        otio.adapters.write_to_file(timeline, str(tmp), adapter_name="otio_json")
    edl_path = None
    if "cmx_3600" in otio.adapters.available_adapter_names():
        video_only = otio.schema.Timeline(name=timeline.name, global_start_time=timeline.global_start_time)
        video_only.tracks.append(timeline.tracks[0].clone())
        edl_path = unused_path(out / "cuts.edl")
        with atomic_path(edl_path) as tmp:
            otio.adapters.write_to_file(video_only, str(tmp), adapter_name="cmx_3600")
    return otio_path, edl_path


def write_description(d: Description, out_dir, fps: float = 30.0) -> DescriptionFiles:
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        from ..errors import CuesmithError

        raise CuesmithError("exists and is not a folder", out)
    out.mkdir(parents=True, exist_ok=True)
    otio_path, edl_path = write_cuts(d, out, fps)
    data = d.to_dict()
    data["files"] = {"otio": otio_path.name if otio_path else None, "edl": edl_path.name if edl_path else None,
                     "fps": fps}
    json_path = write_json_atomic(unused_path(out / "description.json"), data)
    md_path = write_bytes_atomic(unused_path(out / "description.md"), markdown(d).encode("utf-8"))
    return DescriptionFiles(json_path, md_path, otio_path, edl_path)
