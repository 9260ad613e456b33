"""A timeline's clips as one analysis: each clip analysed on its own (cached), joined on the timeline's clock.

Clip i starts at `offsets[i]` seconds (0 for the first); every clip boundary is
a hard cut, the cuts and gradual transitions found inside a clip keep their
place in it. Motion and colour curves are concatenated, so a gap between two
clips (a clip's `record_start` later than the previous clip's end) holds the
curves of the clip before; the next clip's start is still a cut. The tempo
suggestion is made again from the joined motion curve.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import CuesmithError
from ..progress import Progress, report
from .analysis import Colour, Motion, VideoAnalysis, rounded
from .cuts import Cut, GradualTransition
from .tempo import suggest_tempo

BOUNDARY_SCORE = 1.0  # cut score given to a clip boundary (an edit, not a measurement)


def analyze_clips(clips: Sequence[dict], analyze: Callable, progress: Optional[Progress] = None,
                  name: Optional[str] = None) -> VideoAnalysis:
    """Analyse `clips` ([{"video", "start", "end", "record_start"?}]) with `analyze(video, start, end, progress)`
    and join them; `name` (the timeline file) becomes the analysis' path."""
    if not clips:
        raise CuesmithError("a timeline score needs at least one clip")
    analyses = []
    for i, clip in enumerate(clips):
        part = (lambda stage, f, i=i: report(progress, stage, (i + f) / len(clips))) if progress else None
        analyses.append(analyze(clip["video"], clip.get("start"), clip.get("end"), part))
    spans = [clip_span(c, a) for c, a in zip(clips, analyses)]
    return join_analyses(analyses, clip_offsets(clips, spans), spans, name)


def clip_span(clip: dict, analysis: VideoAnalysis) -> float:
    """The clip's length on the timeline: its requested range, else what was decoded."""
    if clip.get("end") is not None:
        return float(clip["end"]) - float(clip.get("start") or 0.0)
    return analysis.duration


def clip_offsets(clips: Sequence[dict], spans: Sequence[float]) -> list[float]:
    offsets, at = [], 0.0
    for i, (clip, span) in enumerate(zip(clips, spans)):
        start = clip.get("record_start")
        start = at if start is None else float(start)
        if start < at - 1e-3:
            raise CuesmithError(f"clip {i + 1} ({clip['video']}) starts at {start:.3f} s, before the clip "
                                f"before it ends ({at:.3f} s); timeline clips may not overlap")
        offsets.append(0.0 if i == 0 else start)
        at = offsets[-1] + span
    return offsets


def join_analyses(analyses: Sequence[VideoAnalysis], offsets: Optional[Sequence[float]] = None,
                  spans: Optional[Sequence[float]] = None, name: Optional[str] = None) -> VideoAnalysis:
    """One VideoAnalysis of clips played one after another (clip i from `offsets[i]` for `spans[i]` s)."""
    spans = list(spans) if spans is not None else [a.duration for a in analyses]
    offsets = list(offsets) if offsets is not None else list(np.concatenate([[0.0], np.cumsum(spans)[:-1]]))
    first_frames = list(np.concatenate([[0], np.cumsum([a.frame_count for a in analyses])[:-1]]).astype(int))
    duration = offsets[-1] + spans[-1]
    frames = sum(a.frame_count for a in analyses)
    fps = frames / max(1e-6, sum(a.duration for a in analyses))
    motion = join_motion(analyses, offsets)
    first = analyses[0]
    return VideoAnalysis(
        info=replace(first.info, path=name or first.info.path, declared_duration=round(duration, 6)),
        start=0.0, end=round(duration, 6), duration=round(duration, 6), frame_count=frames, fps=round(fps, 4),
        variable_frame_rate=any(a.variable_frame_rate for a in analyses) or len({a.fps for a in analyses}) > 1,
        cuts=join_cuts(analyses, offsets, first_frames, fps), transitions=join_transitions(analyses, offsets,
                                                                                          first_frames),
        motion=motion, colour=join_colour(analyses, offsets), tempo=suggest_tempo(np.asarray(motion.smooth)))


def join_cuts(analyses, offsets, first_frames, fps: float) -> list[Cut]:
    """Every boundary, plus the inner cuts more than a frame away from one."""
    boundaries = [Cut(round(o, 6), int(f), BOUNDARY_SCORE) for o, f in zip(offsets[1:], first_frames[1:])]
    edges = np.array([0.0, *offsets[1:]])
    inner = [Cut(round(c.time + o, 6), c.frame + f, c.score)
             for a, o, f in zip(analyses, offsets, first_frames) for c in a.cuts]
    inner = [c for c in inner if np.abs(edges - c.time).min() > 1.0 / fps]
    return sorted(boundaries + inner, key=lambda c: c.time)


def join_transitions(analyses, offsets, first_frames) -> list[GradualTransition]:
    return [replace(t, start=round(t.start + o, 6), end=round(t.end + o, 6), start_frame=t.start_frame + f,
                    end_frame=t.end_frame + f)
            for a, o, f in zip(analyses, offsets, first_frames) for t in a.transitions]


def join_motion(analyses, offsets) -> Motion:
    weights = [len(a.motion.times) for a in analyses]
    return Motion(times=rounded(np.concatenate([np.asarray(a.motion.times) + o for a, o in zip(analyses, offsets)])),
                  energy=[v for a in analyses for v in a.motion.energy],
                  smooth=[v for a in analyses for v in a.motion.smooth],
                  mean=round(float(np.average([a.motion.mean for a in analyses], weights=weights)), 5))


def join_colour(analyses, offsets) -> Colour:
    weights = [a.frame_count for a in analyses]
    mean = lambda name: round(float(np.average([getattr(a.colour, name) for a in analyses],  # noqa: E731
                                               weights=weights)), 4)
    pieces = lambda name: [v for a in analyses for v in getattr(a.colour, name)]  # noqa: E731
    return Colour(times=rounded(np.concatenate([np.asarray(a.colour.times) + o for a, o in zip(analyses, offsets)])),
                  brightness=pieces("brightness"), saturation=pieces("saturation"), warmth=pieces("warmth"),
                  log_chroma=pieces("log_chroma"), mean_brightness=mean("mean_brightness"),
                  mean_saturation=mean("mean_saturation"), mean_warmth=mean("mean_warmth"))
