"""Share of cuts graded A for cut-locked scores vs the constant-tempo baseline; critique time.

Clips: generated (tests/media.py), 4 shots of 1.8-3.4 s each, 128x72 at 24 fps. Music: the
test pulse (tests/critique_media.py: a triad on every beat, louder downbeats, a new chord at
each section) laid on the plan's beat grid. Cut-locked = `planning.plan`; the baseline is
`planning.first_plan` (one tempo from motion, as V-MusProd maps it). Graded from the MIDI,
and from audio renders (SoundFont, 22.05 kHz WAV) for a subset.
The LLM timing uses a tiny random GGUF built here (tests/tiny_gguf.py): it measures
llama.cpp's load + grammar-constrained sampling overhead and the fallback, not prose quality.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

TITLE = "Critique: cuts graded A (cut-locked vs constant tempo), critique time"
CLIPS = 30
AUDIO_CLIPS = 6


def pulse_for(plan_):
    from critique_media import locked_song

    return locked_song(plan_)


def share_a(critique) -> tuple[int, int]:
    cuts = [m for m in critique.key_moments if m.kind == "cut"]
    return sum(m.grade == "A" for m in cuts), len(cuts)


def to_wav(song, path: Path) -> Path:
    import soundfile

    from cuesmith.engine.music.render import render_audio

    audio = render_audio(song, sample_rate=22_050)
    soundfile.write(path, audio.mix, audio.sample_rate)
    return path


def grade_shares(folder: Path) -> dict:
    from critique_media import clip_shots
    from cuesmith.engine import Engine
    from cuesmith.engine.critique import assess
    from cuesmith.engine.planning import first_plan, plan
    from media import make_video

    engine = Engine(use_cache=False)
    totals = {key: [0, 0] for key in ("locked midi", "constant midi", "locked audio", "constant audio")}
    for seed in range(CLIPS):
        analysis = engine.analyze(make_video(folder / f"c{seed}.mp4", clip_shots(seed), size=(128, 72), fps=24).path)
        for name, planner in (("locked", plan), ("constant", first_plan)):
            song = pulse_for(planner(analysis))
            music = {"midi": song}
            if seed < AUDIO_CLIPS:
                music["audio"] = to_wav(song, folder / f"{name}{seed}.wav")
            for kind, source in music.items():
                a, n = share_a(assess(analysis, source))
                totals[f"{name} {kind}"][0] += a
                totals[f"{name} {kind}"][1] += n
    return totals


def critique_times(folder: Path) -> dict:
    from cuesmith.engine import Engine
    from cuesmith.engine.critique import apply_llm, assess
    from cuesmith.engine.planning import plan
    from media import Shot, make_video
    from tiny_gguf import write_tiny_gguf

    shots = [Shot(d, m, s) for d, m, s in ((4.0, "cold", 0.1), (3.5, "forest", 0.3), (5.0, "dusk", 0.2),
                                          (4.5, "warm", 0.5), (3.0, "grey", 0.3), (5.0, "neon", 0.8),
                                          (5.0, "cold", 0.4))]
    clip = make_video(folder / "thirty.mp4", shots, size=(640, 360), fps=30)
    engine = Engine(use_cache=False)
    started = time.perf_counter()
    analysis = engine.analyze(clip.path)
    analyse_s = time.perf_counter() - started
    wav = to_wav(pulse_for(plan(analysis)), folder / "thirty.wav")
    model = write_tiny_gguf(folder / "tiny.gguf")
    runs = {"template": [], "llm": []}
    for _ in range(2):
        started = time.perf_counter()
        critique = assess(analysis, wav)
        runs["template"].append(time.perf_counter() - started)
        started = time.perf_counter()
        apply_llm(critique, model, max_tokens=200)
        runs["llm"].append(time.perf_counter() - started)
    return {"analyse_s": analyse_s, "template_s": min(runs["template"]), "llm_extra_s": min(runs["llm"]),
            "llm_note": critique.prose_note}


def run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shares = grade_shares(folder)
        times = critique_times(folder)
    rows = ["| music | graded from | cuts | graded A | share A |", "| --- | --- | --- | --- | --- |"]
    for key, (a, n) in shares.items():
        name, kind = key.split()
        label = "cut-locked (`planning.plan`)" if name == "locked" else "constant tempo (`first_plan`, baseline)"
        rows.append(f"| {label} | {kind} | {n} | {a} | {a / max(n, 1):.3f} |")
    ratio = lambda kind: (shares[f"locked {kind}"][0] / max(shares[f"locked {kind}"][1], 1)) / max(  # noqa: E731
        shares[f"constant {kind}"][0] / max(shares[f"constant {kind}"][1], 1), 1e-9)
    total = times["template_s"] + times["llm_extra_s"]
    return (f"{CLIPS} generated clips (audio renders for the first {AUDIO_CLIPS}); goal ≥ 0.95 A for cut-locked.\n\n"
            + "\n".join(rows)
            + f"\n\nShare A, cut-locked / baseline: ×{ratio('midi'):.1f} (MIDI), ×{ratio('audio'):.1f} (audio).\n\n"
            "Critique of a 30 s 640x360 clip against a 22.05 kHz WAV (best of 2; video analysis "
            f"{times['analyse_s']:.2f} s, not included):\n\n"
            "| prose | seconds |\n| --- | --- |\n"
            f"| template (baseline) | {times['template_s']:.2f} |\n"
            f"| + tiny random GGUF via llama-cpp-python, max 200 tokens | {total:.2f} (×{total / times['template_s']:.1f}) |\n\n"
            f"The tiny model is random weights, so the figure is llama.cpp load + grammar sampling overhead "
            f"and the fallback; a real 1-3B Q4 model costs more per token. Outcome: {times['llm_note']}")


if __name__ == "__main__":
    import sys

    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent / "tests")]
    print(run())
