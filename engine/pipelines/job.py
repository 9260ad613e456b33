"""A score job, in two steps (as basic-pitch's predict / predict_and_save):

    score(request, ...) -> Score     analysis -> plan -> a family's Music (with keep_best: only the
                                     variation critique.rank_variations puts first) -> critique
                                     -> placement; in memory, writes nothing
    save(score, out_dir) -> ScoreResult
                                     score.mid (score-var2.mid ... for further variations), stems/<part>.wav
                                     and stems/mix.wav, critique.json/.md, result.json with the placement

A symbolic variation's stems are rendered while saving, straight to their files a chunk
at a time (music/render.py): a long cue's audio is never held in memory.

`save` never replaces a file already in out_dir (`unused_path`).
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ..errors import CuesmithError
from ..files import unused_path, write_json_atomic
from ..music.music import Music
from ..planning import plan as cut_locked_plan
from ..planning.plan import PlanOptions, ScorePlan
from ..progress import Progress, report
from ..runtime.sampling import Sampling
from ..schema import Placement, ScoreRequest, ScoreResult, VariationResult
from .placement import place


@dataclass
class Score:
    """A score in memory: what `save` writes. `music[0]` is the chosen variation (critiqued, placed)."""
    request: ScoreRequest
    plan: ScorePlan
    analysis: Any  # VideoAnalysis
    music: list[Music]
    critique: Any  # critique.Critique of music[0]
    placement: Placement
    model: dict[str, Any]  # the family model's info: family, folder, graphs, manifest id
    providers: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def plan_for(analysis, request: ScoreRequest) -> ScorePlan:
    options = PlanOptions(tempo=request.tempo, mode=request.mode, density=request.density)
    return cut_locked_plan(analysis, options)


def score(request: ScoreRequest, analyze: Callable, load_model: Callable[[str, bool], Any],
          progress: Optional[Progress] = None) -> Score:
    """Run one job in memory; `analyze(video, start, end, progress)` and `load_model(family, int8)` come
    from the Engine."""
    request = with_clips(request.validate())
    check_out_dir(request.out_dir)
    timings: dict[str, float] = {}
    began = time.perf_counter()
    # The model's sessions open on a worker thread while the video decodes (ONNX Runtime builds them without
    # the GIL): a third of a cold 30 s score was the two one after the other (issue 19). A model that fails
    # to load (missing, damaged) stops the analysis at its next progress report.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cuesmith-load") as pool:
        loading = pool.submit(_timed, load_model, request.family, request.int8)
        try:
            analysis = _analysis(request, analyze, _stopped_by(loading, progress))
        except Exception:
            if loading.exception() is not None:  # (waits for the load) a model that cannot load is the error
                raise loading.exception() from None
            raise
        timings["analyze"] = _since(began)
        model, timings["load_models"] = loading.result()  # (overlaps "analyze")
    t = time.perf_counter()
    plan = plan_for(analysis, request)
    timings["plan"] = _since(t)
    t = time.perf_counter()
    sampling = Sampling(request.temperature, request.top_k, request.top_p)
    inputs = {"analysis": analysis, **({"description": request.describe} if request.describe else {})}
    music = model.generate(plan, inputs, request.variations, request.seed, sampling, progress)
    timings["generate"] = _since(t)
    timings.update({f"generate_{k}": v for k, v in music[0].report.get("timings", {}).items()})
    t = time.perf_counter()
    if request.keep_best and len(music) > 1:
        best, critique = best_variation(analysis, music, progress)
        music = [best]
        timings["rank"] = _since(t)
    else:
        critique = critique_music(analysis, music[0], progress)
        timings["critique"] = _since(t)
    placement = place(plan, music[0], critique)
    timings["total"] = _since(began)
    return Score(request, plan, analysis, music, critique, placement, model.info,
                 dict(music[0].report.get("providers", {})), timings)


def _analysis(request: ScoreRequest, analyze: Callable, progress: Progress):
    if request.clips:  # a timeline: one analysis on the timeline's clock, each clip boundary a cut
        from ..video.sequence import analyze_clips

        return analyze_clips(request.clips, analyze, progress, request.timeline)
    return analyze(request.video, request.start, request.end, progress)


def _timed(load_model: Callable, family: str, int8: Optional[bool]) -> tuple[Any, float]:
    t = time.perf_counter()
    return load_model(family, int8), _since(t)


def _stopped_by(loading: Future, progress: Optional[Progress]) -> Progress:
    """`progress`, raising the model load's error at the first report after it failed."""
    def forward(stage: str, fraction: float) -> None:
        if loading.done() and loading.exception() is not None:
            raise loading.exception()
        report(progress, stage, fraction)
    return forward


def with_clips(request: ScoreRequest) -> ScoreRequest:
    """A request naming only a timeline file gets its clips, read by the engine."""
    if not request.timeline or request.clips:
        return request
    from ..timeline import read_timeline

    timeline = read_timeline(request.timeline, media_dir=request.media_dir, rate=request.rate)
    return replace(request, clips=timeline.clip_dicts())


def check_out_dir(out_dir: str) -> None:
    if out_dir and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise CuesmithError("exists and is not a folder; --out needs a folder", out_dir)


def best_variation(analysis, music: list[Music], progress: Optional[Progress] = None):
    """(the variation ranked first on its critique and soundness against the clip, its critique)
    (critique.rank_variations)."""
    from ..critique import rank_variations

    report(progress, "critique", 0.0)
    critiques = [critique_music(analysis, m, None) for m in music]
    first = rank_variations(critiques)[0]
    report(progress, "critique", 1.0)
    return music[first], critiques[first]


def critique_music(analysis, music: Music, progress: Optional[Progress]):
    """The HarmonySet critique of the chosen variation against its own clip: of its notes where it has a
    Song, else of its audio."""
    from ..critique import assess

    report(progress, "critique", 0.0)
    if music.song is not None:
        critique = assess(analysis, music.song)
    else:
        from ..critique.music import facts_from_audio
        from ..music.audio import analyze_audio, audio_from_samples

        mix = music.audio_mix()
        mono = mix.mean(axis=1) if mix.ndim == 2 else mix
        audio = audio_from_samples(mono, music.sample_rate)
        critique = assess(analysis, facts_from_audio(analyze_audio(audio), audio))
    report(progress, "critique", 1.0)
    return critique


# -- save -------------------------------------------------------------------------------------------------

def save(score: Score, out_dir: str | Path | None = None, progress: Optional[Progress] = None) -> ScoreResult:
    """Write `score` to `out_dir` (default: its request's out_dir) and return the result, as in result.json."""
    from ..critique import write_critique

    if not (out_dir or score.request.out_dir):
        raise CuesmithError("saving a score needs an out_dir (the folder its files go to)")
    out_dir = Path(out_dir or score.request.out_dir)
    check_out_dir(str(out_dir))
    t = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    variations = [save_variation(m, i, out_dir, score.plan.n_bars, progress, score.request.stems and i == 0,
                                 timings) for i, m in enumerate(score.music)]
    json_path, md_path = write_critique(score.critique, out_dir)
    chosen = variations[0]
    placement = replace(score.placement, midi=chosen.midi,
                        audio={"mix": chosen.stems.get("mix"), "stems": {k: v for k, v in chosen.stems.items()
                                                                          if k != "mix"}})
    plan = score.plan
    result = ScoreResult(
        request=replace(score.request, out_dir=str(out_dir)), duration=plan.duration, tempo=plan.tempos[0].bpm,
        key=plan.key.name, n_bars=plan.n_bars, cut_times=list(plan.cut_times),
        section_bars=[s["bar"] for s in placement.sections], variations=variations, providers=score.providers,
        timings={**score.timings, **timings, "write": _since(t)}, model=score.model,
        critique=critique_summary(score.critique, json_path, md_path), placement=placement)
    path = unused_path(out_dir / "result.json")
    result.result_json = str(path)
    write_json_atomic(path, result.to_dict())
    return result


def save_variation(music: Music, index: int, out_dir: Path, n_bars: int, progress: Optional[Progress],
                   render: bool = False, timings: Optional[dict] = None) -> VariationResult:
    """score.mid (score-varN.mid) and, where the variation has audio (or `render`: its Song rendered to
    audio), its stems and mix under stems/; the render's seconds go to timings["render"]."""
    from ..music.key import detect_key
    from ..music.midi_io import write_midi

    midi, key, parts = None, "", {}
    if music.song is not None:
        name = "score.mid" if index == 0 else f"score-var{index + 1}.mid"
        midi = str(write_midi(music.song, unused_path(out_dir / name)))
        key, parts = detect_key(music.song).name, {p.name: len(p.notes) for p in music.song.parts}
    stems = {}
    folder = out_dir / ("stems" if index == 0 else f"stems-var{index + 1}")
    if music.has_audio:
        from ..music.render import write_stems

        stems = {k: str(v) for k, v in write_stems(music.stems, music.audio_mix(), music.sample_rate, folder,
                                                   progress).items()}
    elif render and music.song is not None:
        from ..music.render import render_stems

        t = time.perf_counter()
        report(progress, "render stems", 0.0)
        stems = {k: str(v) for k, v in render_stems(music.song, folder, progress=progress).items()}
        if timings is not None:
            timings["render"] = _since(t)
    return VariationResult(midi, notes_per_bar(music, n_bars), key, parts, stems, music.report.get("description"))


def critique_summary(critique, json_path: Path, md_path: Path) -> dict:
    return {"json": str(json_path), "markdown": str(md_path), "overall": critique.overall,
            "scores": {d.name: d.score for d in critique.dimensions},
            "key_moments": critique.harmonyset_key_moments}


def notes_per_bar(music: Music, n_bars: int) -> float:
    notes = sum(len(p.notes) for p in music.song.parts) if music.song is not None else 0
    return float(np.round(notes / max(n_bars, 1), 3))


def _since(t: float) -> float:
    return round(time.perf_counter() - t, 4)
