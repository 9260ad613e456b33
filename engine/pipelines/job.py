"""A score job: ScoreRequest -> analysis -> plan -> generation -> files -> ScoreResult.

Outputs go to `request.out_dir` and never replace a file already there
(`unused_path`): score.mid, score-var2.mid ... for further variations,
stems/<part>.wav of the first variation, result.json.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import CuesmithError
from ..files import unused_path, write_json_atomic
from ..music.key import detect_key
from ..music.midi_io import write_midi
from ..music.score import Song
from ..planning import plan as cut_locked_plan
from ..planning.plan import PlanOptions, ScorePlan
from ..progress import Progress, report
from ..runtime.sampling import Sampling
from ..schema import ScoreRequest, ScoreResult, VariationResult
from .vmusprod import VMusProd


def plan_for(analysis, request: ScoreRequest) -> ScorePlan:
    options = PlanOptions(tempo=request.tempo, mode=request.mode, density=request.density)
    return cut_locked_plan(analysis, options)


def run_score(request: ScoreRequest, analyze: Callable, model: Callable[[bool], VMusProd],
              progress: Optional[Progress] = None) -> ScoreResult:
    """Run one job; `analyze(video, start, end, progress)` and `model(int8)` come from the Engine."""
    request.validate()
    timings: dict[str, float] = {}
    began = time.perf_counter()
    if not request.out_dir:
        raise CuesmithError("a score request needs an out_dir (the folder its files go to)")
    out_dir = Path(request.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise CuesmithError("exists and is not a folder; --out needs a folder", out_dir)
    generator = model(request.int8)  # first: a missing model stops the job before any work
    timings["load_models"] = _since(began)
    t = time.perf_counter()
    if request.clips:  # a timeline: one analysis on the timeline's clock, each clip boundary a cut
        from ..video.sequence import analyze_clips

        analysis = analyze_clips(request.clips, analyze, progress, request.timeline)
    else:
        analysis = analyze(request.video, request.start, request.end, progress)
    timings["analyze"] = _since(t)
    t = time.perf_counter()
    plan = plan_for(analysis, request)
    timings["plan"] = _since(t)
    sampling = Sampling(request.temperature, request.top_k, request.top_p)
    generation = generator.generate(plan, request.variations, request.seed, sampling, progress)
    timings.update({f"generate_{k}": v for k, v in generation.timings.items()})
    t = time.perf_counter()
    variations = write_variations(generation.songs, plan, out_dir, request.stems, progress)
    timings["write"] = _since(t)
    t = time.perf_counter()
    critique = critique_first_variation(analysis, generation.songs[0], out_dir, progress)
    timings["critique"] = _since(t)
    timings["total"] = _since(began)
    result = ScoreResult(
        request=request, duration=plan.duration, tempo=plan.tempos[0].bpm, key=plan.key.name, n_bars=plan.n_bars,
        cut_times=list(plan.cut_times), section_bars=[i for i, c in enumerate(plan.controls) if c.section_start],
        variations=variations, providers=generation.providers, timings=timings,
        model={"family": "vmusprod", "folder": str(generator.model.path), "graphs": generator.graphs,
               "manifest_id": generator.model.manifest.get("id", "")},
        critique=critique)
    path = unused_path(out_dir / "result.json")
    result.result_json = str(path)
    write_json_atomic(path, result.to_dict())
    return result


def write_variations(songs: list[Song], plan: ScorePlan, out_dir: Path, stems: bool,
                     progress: Optional[Progress]) -> list[VariationResult]:
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for i, song in enumerate(songs):
        name = "score.mid" if i == 0 else f"score-var{i + 1}.mid"
        midi = write_midi(song, unused_path(out_dir / name))
        rendered = {}
        if stems and i == 0:
            from ..music.render import render_stems

            report(progress, "render stems", 0.0)
            rendered = {k: str(v) for k, v in render_stems(song, out_dir / "stems", progress=progress).items()}
        results.append(VariationResult(str(midi), notes_per_bar(song, plan.n_bars), detect_key(song).name,
                                       {p.name: len(p.notes) for p in song.parts}, rendered))
    return results


def critique_first_variation(analysis, song: Song, out_dir: Path, progress: Optional[Progress]) -> dict:
    """The HarmonySet critique of the score against its own clip: files and the 1-10 scores."""
    from ..critique import assess, write_critique

    report(progress, "critique", 0.0)
    critique = assess(analysis, song)
    json_path, md_path = write_critique(critique, out_dir)
    report(progress, "critique", 1.0)
    return {"json": str(json_path), "markdown": str(md_path), "overall": critique.overall,
            "scores": {d.name: d.score for d in critique.dimensions},
            "key_moments": critique.harmonyset_key_moments}


def notes_per_bar(song: Song, n_bars: int) -> float:
    return float(np.round(sum(len(p.notes) for p in song.parts) / max(n_bars, 1), 3))


def _since(t: float) -> float:
    return round(time.perf_counter() - t, 4)
