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
        self.model_dir = model_dir  # a vmusprod model folder; None: the model store's search path
        self._models: dict = {}

    def analyze(self, video: str | Path, start: Optional[float] = None, end: Optional[float] = None,
                progress: Optional[Progress] = None):
        """Decode `video` once and measure cuts, motion and colour (times relative to `start`)."""
        from .video.analysis import analyze_cached

        return analyze_cached(video, start=start, end=end, progress=progress,
                              cache_dir=self.cache_dir, use_cache=self.use_cache)

    def score(self, request, progress: Optional[Progress] = None):
        """Score a video: a `ScoreRequest` (or its dict) in, a `ScoreResult` out; files in request.out_dir."""
        from .pipelines.job import run_score
        from .schema import ScoreRequest

        if isinstance(request, dict):
            request = ScoreRequest.from_dict(request)
        return run_score(request, lambda v, s, e, p: self.analyze(v, start=s, end=e, progress=p),
                         self.vmusprod, progress)

    def vmusprod(self, int8: bool = False):
        """The V-MusProd runners, loaded once per Engine (warm runs skip session start-up)."""
        from .pipelines.vmusprod import VMusProd

        if int8 not in self._models:
            self._models[int8] = VMusProd(self.model_dir, int8=int8)
        return self._models[int8]

    def critique(self, video: str | Path, music: str | Path | None = None, out_dir: Optional[Path] = None,
                 notes: str = "", llm: str | Path | None = None, start: Optional[float] = None,
                 end: Optional[float] = None, progress: Optional[Progress] = None):
        """Critique `music` (MIDI, audio, a Song; default: the clip's own audio track) against `video`.
        With `out_dir`, writes critique.json and critique.md there. `llm`: a GGUF model for the prose
        (default: "llm_model" in the config file, else the template)."""
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
                   downbeats=keep(facts.downbeats), changes=changes, level_times=[], level_db=[])

