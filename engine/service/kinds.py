"""Running one job of each kind on the shared `Engine`; each returns the path of its result file."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..files import unused_path, write_json_atomic
from ..progress import Progress
from ..schema import AnalyzeRequest, CritiqueRequest, DescribeRequest


def run_score(engine, request: dict, progress: Progress) -> str:
    return engine.score_and_save(dict(request), progress=progress).result_json


def run_critique(engine, request: dict, progress: Progress) -> str:
    from ..critique import write_critique

    critique = CritiqueRequest.from_dict(request)
    # write_critique here rather than Engine.critique(out_dir=...): it names the file it wrote
    result = engine.critique(critique.video, critique.music or None, notes=critique.notes,
                             start=critique.start, end=critique.end, progress=progress)
    json_path, _ = write_critique(result, critique.out_dir)
    return str(json_path)


def run_analyze(engine, request: dict, progress: Progress) -> str:
    analyze = AnalyzeRequest.from_dict(request)
    analysis = engine.analyze(analyze.video, analyze.start, analyze.end, progress=progress)
    return str(write_json_atomic(unused_path(Path(analyze.out_dir) / "analysis.json"), analysis.to_dict()))


def run_describe(engine, request: dict, progress: Progress) -> str:
    describe = DescribeRequest.from_dict(request)
    description = engine.describe(describe.music, lyrics=describe.lyrics or None, tags=describe.tags,
                                  progress=progress)
    return str(description.save(describe.out_dir).json)


RUNNERS: dict[str, Callable[[object, dict, Progress], str]] = {
    "score": run_score, "critique": run_critique, "analyze": run_analyze, "describe": run_describe}
