"""Long timelines (issue 19): warm score time per bar at 15, 60 and 300 bars; a cold `cuesmith score` of a
30 s clip; peak RSS of `cuesmith score` with stems on 30 s, 2 min and 10 min.

Goals: the 300-bar per-bar time within 1.2x of the 15-bar one; cold score of 30 s < 2.5 s; peak RSS with
stems < 600 MiB at 10 minutes. Wall times on a shared machine are noisy: each row gives the CPU seconds
(user + system, the process and its children) and the load average beside them.

    python benchmarks/run.py long
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TITLE = "Long timelines: per-bar score time, cold start, peak RSS with stems"
ROOT = Path(__file__).resolve().parent.parent
TEMPO = 96.0  # fixed, so a clip's length sets its bars: 2.5 s a bar in 4/4
PER_BAR_BARS = (15, 60, 300)
RSS_SECONDS = (30, 120, 600)


def clip(path: Path, seconds: float, size: tuple[int, int], fps: int) -> Path:
    """A generated clip with a hard cut every 10 s (tests/media.py)."""
    from media import MOODS, Shot, make_video

    moods = list(MOODS)
    count = max(1, round(seconds / 10))
    make_video(path, [Shot(seconds / count, moods[i % len(moods)], 0.1 + 0.1 * (i % 6), shapes=2)
                      for i in range(count)], fps=fps, size=size)
    return path


# The process's own peak (VmHWM): ru_maxrss would also count what the parent held when it forked this one.
PEAK_RSS = ("def peak_rss_mib():\n"
            "    status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
            "    return int(status.split()[0]) / 1024")


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def per_bar(tmp: Path) -> list[str]:
    """Warm `Engine.score` (MIDI only, analysis cached, sessions loaded): seconds per bar. CPU: the
    process's, all its threads (ONNX Runtime's included)."""
    from cuesmith.engine.api import Engine

    engine = Engine(cache_dir=tmp / "cache")
    rows = []
    for bars in PER_BAR_BARS:
        video = clip(tmp / f"bars{bars}.mp4", bars * 4 * 60 / TEMPO, (160, 90), 10)
        request = {"video": str(video), "stems": False, "tempo": TEMPO, "out_dir": str(tmp / f"o{bars}")}
        engine.score(request)  # fills the analysis cache, loads the sessions
        wall, cpu = time.perf_counter(), time.process_time()
        score = engine.score(request)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        n = score.plan.n_bars
        rows.append((bars, n, wall, cpu, score.timings.get("generate", 0.0), load()))
    base, cpu_base = rows[0][2] / rows[0][1], rows[0][3] / rows[0][1]
    lines = ["| bars asked | bars | warm score s | CPU s | generate s | ms per bar | vs 15 bars | CPU ms per bar "
             "| vs 15 bars | load |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for bars, n, wall, cpu, generate, avg in rows:
        lines.append(f"| {bars} | {n} | {wall:.2f} | {cpu:.2f} | {generate:.2f} | {1000 * wall / n:.1f} "
                     f"| {wall / n / base:.2f}× | {1000 * cpu / n:.1f} | {cpu / n / cpu_base:.2f}× | {avg} |")
    return lines


def scored(video: Path, out: Path, stems: bool = True) -> dict:
    """One `cuesmith score` in a fresh interpreter: wall s, CPU s, its peak RSS (MiB), the result's timings."""
    code = ("import sys, json\nfrom cuesmith.engine.cli import main\n"
            f"code = main(['score', {str(video)!r}, '--out', {str(out)!r}] + {[] if stems else ['--no-stems']!r})\n"
            f"{PEAK_RSS}\nprint(json.dumps({{'code': code, 'rss': peak_rss_mib()}}))")
    wall, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "CUESMITH_CACHE_DIR": str(out) + "-cache"})
    wall, cpu = time.perf_counter() - wall, children_cpu() - cpu
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    report = json.loads(done.stdout.strip().splitlines()[-1])
    timings = json.loads((out / "result.json").read_text())["timings"]
    return {"wall": wall, "cpu": cpu, "rss": report["rss"], "timings": timings, "load": load()}


def cold(tmp: Path) -> list[str]:
    video = clip(tmp / "cold30.mp4", 30.0, (1280, 720), 30)
    runs = {stems: scored(video, tmp / f"cold-{stems}", stems) for stems in (True, False)}
    lines = ["| cold `cuesmith score`, 30 s 1280×720 | wall s | CPU s | peak RSS MiB | load |",
             "| --- | --- | --- | --- | --- |"]
    for stems, run in runs.items():
        lines.append(f"| {'with stems' if stems else 'MIDI only'} | {run['wall']:.2f} | {run['cpu']:.2f} "
                     f"| {run['rss']:.0f} | {run['load']} |")
    steps = ", ".join(f"{k} {v:.2f}" for k, v in runs[True]["timings"].items())
    return lines + ["", f"Steps of the run with stems (s, wall): {steps}."]


def rss(tmp: Path) -> list[str]:
    lines = ["| clip (320×180, 10 fps) | wall s | CPU s | render s | peak RSS MiB | load |",
             "| --- | --- | --- | --- | --- | --- |"]
    for seconds in RSS_SECONDS:
        video = clip(tmp / f"rss{seconds}.mp4", seconds, (320, 180), 10)
        run = scored(video, tmp / f"rss-{seconds}")
        lines.append(f"| {seconds // 60} min {seconds % 60} s | {run['wall']:.1f} | {run['cpu']:.1f} "
                     f"| {run['timings'].get('render', 0):.1f} | {run['rss']:.0f} | {run['load']} |")
    return lines


def run() -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sections = [cold(tmp), per_bar(tmp), rss(tmp)]
    return "\n".join([
        "Cold: a fresh interpreter running `cuesmith score` (the CLI's main) with an empty analysis cache. "
        "Warm: a second `Engine.score` in one process (MIDI only, tempo fixed at 96 BPM so a clip's length "
        "sets its bars). Peak RSS: VmHWM of the scoring process (forked synthesis workers, when cores are "
        "idle, are not counted). The machine is shared: compare CPU seconds, and read wall seconds with the "
        "load average (2 cores).", "", *sections[0], "", *sections[1], "", *sections[2]])


if __name__ == "__main__":
    print(run())
