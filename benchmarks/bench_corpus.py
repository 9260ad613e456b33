"""The audio corpus and its paired videos (issue 15): build rate, and cuts found where planned.

Build rate: audio seconds per CPU-hour of the excerpts in the corpus cache, per
SoundFont, from the CPU time each excerpt's render recorded (this process and
its children: FluidSynth runs as a child). Rendered niced on the shared machine.
Paired video: for the first `VIDEOS` validation excerpts, the generator's video
(320x180, 25 fps, H.264 + AAC) and `cuesmith analyze` on it: planned cuts found
within one frame, cuts found that were not planned, and the generator's speed.
The baseline for cuts is the plan itself (a perfect pairing finds every planned
cut and nothing else).
"""
from __future__ import annotations

import resource

TITLE = "Audio corpus build rate and paired-video cut alignment (issue 15)"
VIDEOS = 8


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def build_rate() -> str:
    from cuesmith.engine.corpus.audio import load_excerpts

    rows = []
    excerpts = load_excerpts("train") + load_excerpts("valid")
    for font in sorted({e.variant["soundfont"] for e in excerpts}):
        chosen = [e for e in excerpts if e.variant["soundfont"] == font]
        audio, cpu = sum(e.seconds for e in chosen), sum(e.cpu_seconds for e in chosen)
        rows.append(f"| {font} | {len(chosen)} | {audio:.0f} | {cpu:.1f} | {audio / cpu * 3600:.0f} s ({audio / cpu:.0f}x real time) |")
    return ("| SoundFont | excerpts | audio s | CPU s | audio per CPU-hour |\n| --- | --- | --- | --- | --- |\n"
            + "\n".join(rows))


def paired_videos() -> str:
    from cuesmith.engine.corpus.audio import load_excerpts
    from cuesmith.engine.corpus.video import build_paired
    from cuesmith.engine.video.analysis import analyze

    planned = found = extra = 0
    video_seconds = cpu = 0.0
    for excerpt in load_excerpts("valid")[:VIDEOS]:
        started = _cpu_seconds()
        path, plan = build_paired(excerpt)
        cpu += _cpu_seconds() - started
        video_seconds += plan.seconds
        detected = [c.frame for c in analyze(path).cuts]
        matched = [f for f in plan.cut_frames() if detected and min(abs(f - d) for d in detected) <= 1]
        planned, found = planned + len(plan.cuts), found + len(matched)
        extra += sum(1 for d in detected if min((abs(d - f) for f in plan.cut_frames()), default=9) > 1)
    return (f"{VIDEOS} validation excerpts, {video_seconds:.0f} s of video: {found} of {planned} planned cuts "
            f"found by `analyze` within one frame, {extra} cuts found that were not planned. "
            f"Generator: {video_seconds / cpu:.1f}x real time per CPU core (drawing, H.264 and AAC).")


def run() -> str:
    return "Build rate, from the excerpts in the cache:\n\n" + build_rate() + "\n\n" + paired_videos()


if __name__ == "__main__":
    print(run())
