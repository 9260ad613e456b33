"""The job service's cost and its warm engine: score jobs on a 3 s clip (stems off), three ways.

- cold: a new `Engine` per job (models loaded every time, as one CLI run per job);
- direct: one warm `Engine`, `Engine.score` called in this thread;
- service: `JobService.submit` + `wait` on the same warm engine (journal commits, worker thread, events).

Plus the latency of `submit` itself (request checks + one committed SQLite row, synchronous=FULL).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

TITLE = "Job service: score jobs cold, warm direct, warm through the service; submit latency"
JOBS = 5
SUBMITS = 50


def timed(fn) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def run() -> str:
    from cuesmith.engine import Engine
    from cuesmith.engine.service import JobService
    from media import Shot, make_video

    folder = Path(tempfile.mkdtemp(prefix="bench-service-"))
    clip = make_video(folder / "clip.mp4", [Shot(1.4, "warm", 0.3), Shot(1.6, "cold", 0.8)]).path
    request = {"video": str(clip), "stems": False}

    cold = [timed(lambda i=i: Engine(use_cache=False).score_and_save({**request, "out_dir": str(folder / f"cold{i}")}))
            for i in range(JOBS)]
    engine = Engine(use_cache=False)
    engine.score_and_save({**request, "out_dir": str(folder / "warmup")})
    direct = [timed(lambda i=i: engine.score_and_save({**request, "out_dir": str(folder / f"direct{i}")}))
              for i in range(JOBS)]
    service = JobService(folder / "journal.sqlite", folder / "root", engine=engine)
    service.start()
    through = [timed(lambda: service.wait(service.submit("score", request).id)) for _ in range(JOBS)]
    service.stop()

    idle = JobService(folder / "submits.sqlite", folder / "root", engine=engine)  # not started: jobs stay queued
    submits = [timed(lambda: idle.submit("analyze", {"video": str(clip)})) for _ in range(SUBMITS)]

    base = statistics.median(direct)
    rows = [("cold: new Engine per job", cold), ("direct: warm Engine.score", direct),
            ("service: submit + wait, warm engine", through)]
    lines = [f"{JOBS} score jobs each, 3 s clip, stems off; median seconds per job; ratio to direct (warm).", "",
             "| way | median s | min s | ratio to direct |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {statistics.median(t):.3f} | {min(t):.3f} | {statistics.median(t) / base:.2f} |"
              for name, t in rows]
    lines += ["", f"`submit` (checks + committed journal row), {SUBMITS} analyze requests: median "
              f"{statistics.median(submits) * 1000:.2f} ms, max {max(submits) * 1000:.2f} ms."]
    return "\n".join(lines)
