"""The critique against what it must tell apart (issue 13), this version vs the installed baseline; critique time.

Media (made here; POP909 validation songs 701-800, every `STEP`th; thresholds come from 001-700):
- per song, an excerpt of whole bars lasting ≥ 20 s (tests/critique_media.pop909_excerpt) and a
  128x72 24 fps video cut on some of its downbeats (shots 1.8-4.5 s);
- music, written as MIDI files: the excerpt ("own"), it played half a beat late ("late"), the next
  song's excerpt ("other"), and the excerpt's pitch-scrambled and random-note versions (foils.py).
Tables:
1. downbeat-cut video: own beats late / own beats other on rhythm, pairs won;
2. unrelated video (the next song's cuts): random notes above the real excerpt on rhythm,
   scrambled/random at or above real on the overall score (the mean of the four dimensions,
   which leave soundness aside), and ranked above real where variations are ranked
   (`rank_variations`; the baseline ranks on the overall score), pairs (lower is better);
3. soundness flags (this version only; the baseline has no soundness facts).
Baseline: the same runner in a process that imports the installed cuesmith (the main checkout,
`BASELINE_ROOT`), on the same files. Timing: `assess` on a 30 s 640x360 clip against a 22.05 kHz
WAV, template prose, best of 2, analysis not included, both versions in this run; plus this
version's LLM path with a tiny random GGUF (tests/tiny_gguf.py: load + grammar-sampling overhead).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TITLE = "Critique: music vs noise, alignment vs density (issue 13), and critique time"
STEP = 2  # 50 validation songs
BASELINE_ROOT = Path(os.environ.get("CUESMITH_BASELINE_ROOT", "/work/main"))

RUNNER = r'''
import json, sys, time
from cuesmith.engine import Engine
from cuesmith.engine.critique import assess
try:
    from cuesmith.engine.critique.assess import variation_value  # how variations are ranked
except ImportError:  # a version without it ranks on the overall score
    variation_value = lambda c: c.overall or 0.0
jobs = json.load(open(sys.argv[1]))
engine = Engine(use_cache=False)
analyses, out = {}, {"scores": [], "timing": None}
for video, music in jobs["pairs"]:
    if video not in analyses:
        analyses[video] = engine.analyze(video)
    c = assess(analyses[video], music)
    out["scores"].append([c.rhythm_score, c.overall, bool((getattr(c, "soundness", None) or {}).get("flagged")),
                          variation_value(c)])
if jobs.get("timing"):
    video, wav = jobs["timing"]
    analysis = engine.analyze(video)
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        assess(analysis, wav)
        runs.append(time.perf_counter() - started)
    out["timing"] = min(runs)
json.dump(out, open(sys.argv[2], "w"))
'''


def to_wav(song, path: Path) -> Path:
    import soundfile

    from cuesmith.engine.music.render import render_audio

    audio = render_audio(song, sample_rate=22_050)
    soundfile.write(path, audio.mix, audio.sample_rate)
    return path


def make_media(folder: Path) -> dict:
    from critique_media import downbeat_cut_shots, pop909_excerpt
    from cuesmith.engine.critique.foils import pitch_scrambled, played_late, random_notes
    from cuesmith.engine.music.midi_io import write_midi
    from media import make_video

    rng = np.random.default_rng(13)
    songs, videos = [], []
    numbers = list(range(701, 801, STEP))
    for number in numbers:
        song = pop909_excerpt(number, 20.0, rng)
        videos.append(str(make_video(folder / f"{number}.mp4", downbeat_cut_shots(song, rng, 24),
                                     size=(128, 72), fps=24).path))
        songs.append(song)
    pairs, index = [], {}
    for i, (number, song) in enumerate(zip(numbers, songs)):
        nxt = (i + 1) % len(songs)
        music = {"own": song, "late": played_late(song, 0.5), "other": songs[nxt],
                 "scrambled": pitch_scrambled(song, rng), "random": random_notes(song, rng)}
        paths = {k: str(write_midi(m, folder / f"{number}-{k}.mid")) for k, m in music.items()}
        for name in ("own", "late", "other"):
            index[(i, "cut", name)] = len(pairs)
            pairs.append((videos[i], paths[name]))
        for name in ("own", "scrambled", "random"):
            index[(i, "unrelated", name)] = len(pairs)
            pairs.append((videos[nxt], paths[name]))
    return {"pairs": pairs, "index": index, "n": len(songs)}


def timing_media(folder: Path) -> tuple[str, str]:
    from cuesmith.engine import Engine
    from cuesmith.engine.planning import plan
    from critique_media import locked_song
    from media import Shot, make_video

    shots = [Shot(d, m, s) for d, m, s in ((4.0, "cold", 0.1), (3.5, "forest", 0.3), (5.0, "dusk", 0.2),
                                          (4.5, "warm", 0.5), (3.0, "grey", 0.3), (5.0, "neon", 0.8),
                                          (5.0, "cold", 0.4))]
    clip = make_video(folder / "thirty.mp4", shots, size=(640, 360), fps=30)
    analysis = Engine(use_cache=False).analyze(clip.path)
    return str(clip.path), str(to_wav(locked_song(plan(analysis)), folder / "thirty.wav"))


def run_version(folder: Path, jobs: dict, name: str, baseline: bool) -> dict:
    (folder / "runner.py").write_text(RUNNER)
    (folder / f"jobs-{name}.json").write_text(json.dumps(jobs))
    env = dict(os.environ)
    cwd = None
    if baseline:
        env.pop("PYTHONPATH", None)  # the installed cuesmith: the main checkout
        cwd = str(BASELINE_ROOT)
    env["CUESMITH_CACHE_DIR"] = str(folder / f"cache-{name}")
    done = subprocess.run([sys.executable, str(folder / "runner.py"), str(folder / f"jobs-{name}.json"),
                           str(folder / f"out-{name}.json")], env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name} runner failed: {done.stderr[-2000:]}")
    return json.loads((folder / f"out-{name}.json").read_text())


def tables(media: dict, scores: list) -> dict:
    n, at = media["n"], lambda i, video, music: scores[media["index"][(i, video, music)]]  # noqa: E731
    count = lambda f: sum(bool(f(i)) for i in range(n))  # noqa: E731
    return {
        "own > late (rhythm)": count(lambda i: at(i, "cut", "own")[0] > at(i, "cut", "late")[0]),
        "own > other (rhythm)": count(lambda i: at(i, "cut", "own")[0] > at(i, "cut", "other")[0]),
        "random > real (rhythm, unrelated video)": count(lambda i: at(i, "unrelated", "random")[0]
                                                         > at(i, "unrelated", "own")[0]),
        "scrambled ≥ real (overall, unrelated video)": count(lambda i: at(i, "unrelated", "scrambled")[1]
                                                             >= at(i, "unrelated", "own")[1]),
        "random ≥ real (overall, unrelated video)": count(lambda i: at(i, "unrelated", "random")[1]
                                                          >= at(i, "unrelated", "own")[1]),
        "scrambled ranked above real (variations)": count(lambda i: at(i, "unrelated", "scrambled")[3]
                                                          > at(i, "unrelated", "own")[3]),
        "random ranked above real (variations)": count(lambda i: at(i, "unrelated", "random")[3]
                                                       > at(i, "unrelated", "own")[3]),
        "flagged": {k: count(lambda i, k=k: at(i, "unrelated", k)[2]) for k in ("own", "scrambled", "random")},
    }


def llm_extra(folder: Path, clip: str, wav: str) -> tuple[float, str]:
    from cuesmith.engine import Engine
    from cuesmith.engine.critique import apply_llm, assess
    from tiny_gguf import write_tiny_gguf

    analysis = Engine(use_cache=False).analyze(clip)
    critique = assess(analysis, wav)
    model = write_tiny_gguf(folder / "tiny.gguf")
    runs = []
    for _ in range(2):
        started = time.perf_counter()
        apply_llm(critique, model, max_tokens=200)
        runs.append(time.perf_counter() - started)
    return min(runs), critique.prose_note


def run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        media = make_media(folder)
        clip, wav = timing_media(folder)
        jobs = {"pairs": media["pairs"], "timing": [clip, wav]}
        new = run_version(folder, jobs, "new", baseline=False)
        old = run_version(folder, jobs, "old", baseline=True) if BASELINE_ROOT.is_dir() else None
        llm_s, llm_note = llm_extra(folder, clip, wav)
    n = media["n"]
    t_new, t_old = tables(media, new["scores"]), tables(media, old["scores"]) if old else None
    rows = ["| pairs (of %d) | goal | this version | baseline (main) |" % n, "| --- | --- | --- | --- |"]
    goals = {"own > late (rhythm)": "≥ 90%", "own > other (rhythm)": "≥ 90%",
             "random > real (rhythm, unrelated video)": "≤ 10%", "scrambled ≥ real (overall, unrelated video)": "low",
             "random ≥ real (overall, unrelated video)": "low",
             "scrambled ranked above real (variations)": "0", "random ranked above real (variations)": "0"}
    for key, goal in goals.items():
        rows.append(f"| {key} | {goal} | {t_new[key]} | {t_old[key] if t_old else 'n/a'} |")
    flags = t_new["flagged"]
    sound = ["| music | flagged | not flagged |", "| --- | --- | --- |"]
    sound += [f"| {k} | {flags[k]} | {n - flags[k]} |" for k in ("own", "scrambled", "random")]
    timing = ["| version | template, s |", "| --- | --- |", f"| this version | {new['timing']:.3f} |"]
    if old:
        timing.append(f"| baseline (main) | {old['timing']:.3f} (this version ×{new['timing'] / old['timing']:.2f}) |")
    return (f"{n} POP909 validation songs (701-800, one in {STEP}), excerpts ≥ 20 s, videos 128x72 at 24 fps "
            "cut on some of each excerpt's downbeats; music graded from MIDI files. Unrelated video = the next "
            "song's video.\n\n" + "\n".join(rows)
            + "\n\nSoundness facts (this version; MIDI, excerpts against the unrelated video; goal: "
              "scrambled and random ≥ 90% flagged, real ≤ 10%):\n\n" + "\n".join(sound)
            + "\n\nCritique of a 30 s 640x360 clip against a 22.05 kHz WAV (best of 2, analysis not included):\n\n"
            + "\n".join(timing)
            + f"\n\nThis version + a tiny random GGUF via llama-cpp-python (max 200 tokens): +{llm_s:.2f} s "
              f"(load + grammar sampling overhead, not prose quality). Outcome: {llm_note}")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent / "tests")]
    print(run())
