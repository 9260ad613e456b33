"""Cut detection and analysis speed: cuesmith against PySceneDetect, on the same generated files.

Ground truth comes from the generator (tests/media.py): hard cuts at known
frames, plus fades (through black and white, over textured and flat
pictures) and dissolves that a cut detector must not report as cuts.
A detected cut counts as right within one frame of a true one.
PySceneDetect runs with its PyAV backend and default settings; its detectors
are also fed cuesmith's own downscaled frames, to see whether their decision
rule would beat ours on the same input. Each detector runs three times,
interleaved with the others; the table keeps each one's least CPU time
(time.process_time: all threads of this process, the decoder's included)
and least wall time. The machine may be shared: the load average is given.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from media import Shot, Transition, make_video

TITLE = "Video analysis vs PySceneDetect"
ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "out" / "bench-media"


def bench_shots():
    shots = [Shot(2.0, "cold", 0.1), Shot(1.5, "warm", 0.8, shapes=5), Shot(2.5, "forest", 0.3),
             Shot(1.2, "dusk", 1.5, shapes=6), Shot(2.0, "grey", 0.05, shapes=1), Shot(2.0, "neon", 0.6),
             Shot(1.8, "warm", 0.2), Shot(2.2, "cold", 1.2, shapes=6), Shot(1.5, "grey", 2.0, shapes=6),
             Shot(2.5, "forest", 0.4), Shot(2.0, "dusk", 0.3)]
    transitions = [Transition("cut"), Transition("fade", 1.0), Transition("cut"), Transition("cut"),
                   Transition("dissolve", 1.0), Transition("cut"), Transition("cut"), Transition("cut"),
                   Transition("dissolve", 0.6), Transition("cut")]
    return shots, transitions


def fade_shots():
    """Fades over textured and flat pictures, to black and to white, a dip, and three hard cuts."""
    shots = [Shot(2.0, "warm", 0.3), Shot(2.0, "cold", 0.3), Shot(1.5, "flat-grey", 0.0, shapes=0),
             Shot(2.0, "near-flat", 0.1, shapes=2), Shot(2.0, "forest", 0.4), Shot(2.0, "forest", 0.4),
             Shot(2.0, "dusk", 0.6, shapes=4), Shot(4.0, "flat-grey", 0.0, shapes=0)]
    transitions = [Transition("fade", 1.0, via="white"), Transition("cut"), Transition("fade", 1.0),
                   Transition("cut"), Transition("fade", 0.6), Transition("cut"),
                   Transition("fade", 1.2, via="white")]
    return shots, transitions, dict(opening=Transition("fade_in", 1.0), closing=Transition("fade_out", 3.0))


def bench_files():
    MEDIA.mkdir(parents=True, exist_ok=True)
    shots, transitions = bench_shots()
    specs = {"720p": dict(size=(1280, 720)), "1080p": dict(size=(1920, 1080)),
             "720p-vfr": dict(size=(1280, 720), vfr=True)}
    files = {name: make_bench_file(name, shots, transitions, **opts) for name, opts in specs.items()}
    shots, transitions, ends = fade_shots()
    files["720p-fades"] = make_bench_file("720p-fades", shots, transitions, size=(1280, 720), **ends)
    return files


def make_bench_file(name: str, shots, transitions, **opts):
    path = MEDIA / f"bench-{name}.mp4"
    tmp = path.with_suffix(".tmp.mp4")
    truth = make_video(tmp, shots, transitions, fps=30, **opts)
    tmp.replace(path)
    truth.path = path
    return truth


def f1(found: list[float], truth: list[float], tolerance: float) -> float:
    unmatched = list(truth)
    hits = 0
    for t in found:
        match = next((u for u in unmatched if abs(u - t) <= tolerance), None)
        if match is not None:
            unmatched.remove(match)
            hits += 1
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def run_cuesmith(path: Path, decode_threads: str | None = None):
    from cuesmith.engine.video import decode
    from cuesmith.engine.video.analysis import analyze

    default, decode.DECODE_THREADS = decode.DECODE_THREADS, decode_threads
    try:
        result = analyze(path)
    finally:
        decode.DECODE_THREADS = default
    return [c.time for c in result.cuts]


def run_scenedetect(path: Path, detector_name: str):
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager, open_video

    video = open_video(str(path), backend="pyav")
    manager = SceneManager()
    manager.add_detector(AdaptiveDetector() if detector_name == "adaptive" else ContentDetector())
    manager.detect_scenes(video)
    return [start.seconds for start, _ in manager.get_scene_list()[1:]]


def run_scenedetect_on_our_frames(path: Path, detector_name: str):
    """Their decision rule on our decoded, downscaled frames."""
    from scenedetect import AdaptiveDetector, ContentDetector, FrameTimecode

    from cuesmith.engine.video.decode import iter_frames, open_container

    detector = AdaptiveDetector() if detector_name == "adaptive" else ContentDetector()
    container = open_container(path)
    fps = float(container.streams.video[0].average_rate)
    found, last = [], None
    for i, (t, rgb, _) in enumerate(iter_frames(container, path, 0.0, None)):
        last = FrameTimecode(i, fps)
        found += detector.process_frame(last, np.ascontiguousarray(rgb[..., ::-1]))
    found += detector.post_process(last) if last is not None else []
    container.close()
    return [c.seconds for c in found]


REPEATS = 3
DETECTORS = {
    "cuesmith (cuts, fades, motion, colour)": lambda path: run_cuesmith(path),
    "cuesmith, decoder frame threads on": lambda path: run_cuesmith(path, "AUTO"),
    "PySceneDetect content (pyav)": lambda path: run_scenedetect(path, "content"),
    "PySceneDetect adaptive (pyav)": lambda path: run_scenedetect(path, "adaptive"),
    "PySceneDetect content on our frames": lambda path: run_scenedetect_on_our_frames(path, "content"),
    "PySceneDetect adaptive on our frames": lambda path: run_scenedetect_on_our_frames(path, "adaptive"),
}
BASELINE = "PySceneDetect content (pyav)"


def timed(fn, path):
    cpu, wall = time.process_time(), time.perf_counter()
    cuts = fn(path)
    return cuts, time.process_time() - cpu, time.perf_counter() - wall


def measure_file(path: Path) -> dict[str, tuple[list[float], float, float]]:
    """Per detector: (cuts, least CPU s, least wall s) over REPEATS interleaved runs."""
    best: dict[str, tuple[list[float], float, float]] = {}
    for _ in range(REPEATS):
        for name, fn in DETECTORS.items():
            cuts, cpu, wall = timed(fn, path)
            _, best_cpu, best_wall = best.get(name, (None, cpu, wall))
            best[name] = (cuts, min(cpu, best_cpu), min(wall, best_wall))
    return best


def run() -> str:
    from cuesmith.engine.video.decode import decode_threads

    files = bench_files()
    load = os.getloadavg()[0]
    rows = ["| file | detector | cut F1 | CPU s | wall s | × real time (wall) | content CPU / this | "
            "content wall / this |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, truth in files.items():
        tolerance = 1.0 / 30 + 1e-3
        duration = truth.duration + 1.0 / 30
        results = measure_file(truth.path)
        _, base_cpu, base_wall = results[BASELINE]
        for detector, (cuts, cpu, wall) in results.items():
            rows.append(f"| {name} | {detector} | {f1(cuts, truth.cuts, tolerance):.3f} | {cpu:.2f} | {wall:.2f} "
                        f"| {duration / wall:.1f} | {base_cpu / cpu:.2f} | {base_wall / wall:.2f} |")
    first, fades = files["720p"], files["720p-fades"]
    note = (f"Files: {len(first.cuts)} hard cuts, 1 fade and 2 dissolves, {first.duration:.0f} s at 30 fps, H.264 "
            f"(720p, 1080p, 720p variable frame rate); 720p-fades: {len(fades.cuts)} hard cuts and "
            f"{len(fades.gradual)} fades (to black and white, over textured, flat and near-flat pictures, a dip, "
            f"a flat picture faded out to black), {fades.duration:.0f} s. "
            f"Times: least of {REPEATS} interleaved runs. cuesmith's default picks the decoder's threads by "
            f"load (here: {decode_threads()}). Load average at the start: {load:.1f} "
            f"(at the end: {os.getloadavg()[0]:.1f}). The last two columns: the baseline's time over this "
            "row's (above 1: this row is faster).")
    return note + "\n\n" + "\n".join(rows)
