"""`Engine`: the one object the CLI, the OSC bridge and the GUI talk to."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from .progress import Progress


class Engine:
    """cuesmith's verbs over plain data.

    >>> engine = Engine()
    >>> analysis = engine.analyze("clip.mp4", start=2.0, end=12.5)
    >>> analysis.cuts
    """

    def __init__(self, cache_dir: Optional[Path] = None, use_cache: bool = True,
                 model_dir: Optional[Path] = None):
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.model_dir = model_dir  # a model folder; None: each family's model store search path
        self._models: dict = {}

    def analyze(self, video: str | Path, start: Optional[float] = None, end: Optional[float] = None,
                progress: Optional[Progress] = None, settings=None):
        """Decode `video` once and measure cuts, motion and colour (times relative to `start`);
        `settings`: an `engine.video.settings.AnalysisSettings` (default: its documented defaults)."""
        from .video.analysis import analyze_cached
        from .video.settings import DEFAULT_SETTINGS

        return analyze_cached(video, start=start, end=end, progress=progress, cache_dir=self.cache_dir,
                              use_cache=self.use_cache, settings=settings or DEFAULT_SETTINGS)

    def score(self, request=None, progress: Optional[Progress] = None, **values):
        """Score a video or a timeline in memory: a `ScoreRequest`, its dict, or keywords
        (`engine.score(video="x.mp4", seed=3)`) in, a `Score` (plan, music, critique, placement) out.
        Writes nothing: `save` does."""
        from .pipelines.job import score
        from .schema import ScoreRequest, coerce

        return score(coerce(ScoreRequest, request, **values),
                     lambda v, s, e, p: self.analyze(v, start=s, end=e, progress=p), self.model, progress)

    def save(self, score, out_dir: str | Path | None = None, progress: Optional[Progress] = None):
        """Write a `Score` (MIDI, stems, critique, result.json) to out_dir (default: its request's);
        returns the `ScoreResult` written to result.json."""
        from .pipelines.job import save

        return save(score, out_dir, progress)

    def score_and_save(self, request=None, progress: Optional[Progress] = None, **values):
        """`save(score(...))`: the files of a score request in its out_dir; returns the `ScoreResult`."""
        return self.save(self.score(request, progress, **values), progress=progress)

    def model(self, family: str = "vmusprod", int8: Optional[bool] = None):
        """A family's loaded model, once per Engine (warm runs skip session start-up). `model_dir` goes to
        every family; int8 None: the model's own choice."""
        from .pipelines import load_family

        if (family, int8) not in self._models:
            self._models[family, int8] = load_family(family, self.model_dir, int8=int8)
        return self._models[family, int8]

    def timeline(self, request=None, **values):
        """The clips of a timeline file: a `TimelineRequest`, its dict or keywords in, a `Timeline` out."""
        from .schema import TimelineRequest, coerce
        from .timeline import read_timeline

        request = coerce(TimelineRequest, request, **values)
        return read_timeline(request.timeline, media_dir=request.media_dir, rate=request.rate)

    def critique(self, video=None, music: str | Path | None = None, out_dir: Optional[Path] = None,
                 notes: str = "", llm: str | Path | None = None, start: Optional[float] = None,
                 end: Optional[float] = None, progress: Optional[Progress] = None):
        """Critique `music` (MIDI, audio, a Song; default: the clip's own audio track) against `video`.
        `video` may also be a `CritiqueRequest` or its dict. With `out_dir`, writes critique.json and
        critique.md there. `llm`: a GGUF model for the prose (default: "llm_model" in the config file,
        else the template)."""
        if video is None or isinstance(video, dict) or hasattr(video, "to_dict"):
            from .schema import CritiqueRequest, coerce

            request = coerce(CritiqueRequest, video)
            video, music, notes = request.video, music or request.music or None, notes or request.notes
            start, end = request.start if start is None else start, request.end if end is None else end
            out_dir = out_dir or request.out_dir or None
        from .critique import apply_llm, assess, write_critique
        from .critique.music import music_facts
        from .errors import CuesmithError
        from .progress import report

        analysis = self.analyze(video, start=start, end=end, progress=progress)
        if music is None:
            if analysis.info.audio is None:
                raise CuesmithError("has no audio track to critique; give the music with --music FILE", video)
            facts = music_facts(video)
            facts = trim_to_clip(facts, analysis.start, analysis.end) if (start or end) else facts
        else:
            facts = music_facts(music)
        report(progress, "critique", 0.5)
        result = assess(analysis, facts, notes=notes)
        model = llm or configured_llm()
        if model:
            apply_llm(result, model)
        if out_dir is not None:
            write_critique(result, out_dir)
        report(progress, "critique", 1.0)
        return result

    def describe(self, music, lyrics: str | Path | None = None, tags=None, llm: str | Path | None = None,
                 progress: Optional[Progress] = None):
        """A music-video description of `music` (MIDI, audio or a Song): overview, a window every 2 s and cut
        points on beats, with optional lyrics (.lrc or plain text) and tags ("ballad, story narrative").
        Returns a `describe.Description`; `.save(out_dir)` writes description.json/.md, cuts.otio/.edl."""
        from .describe import describe

        return describe(music, lyrics=lyrics, tags=tags, llm=llm or configured_llm(), progress=progress)


def configured_llm() -> Optional[str]:
    """"llm_model" from the user's settings ($CUESMITH_LLM or config.json), if any."""
    from .config import user_setting

    return user_setting("llm_model")


def trim_to_clip(facts, start: float, end: float):
    """The clip's own audio, cut to the analysed range and shifted so the clip starts at 0."""
    from dataclasses import replace

    keep = lambda ts: [round(t - start, 4) for t in ts if start <= t < end]  # noqa: E731
    changes = [replace(c, time=round(c.time - start, 4)) for c in facts.changes if start <= c.time < end]
    return replace(facts, duration=round(min(facts.duration, end) - start, 4), beats=keep(facts.beats),
                   heard_beats=keep(facts.heard_beats),
                   downbeats=keep(facts.downbeats), changes=changes, level_times=[], level_db=[])

