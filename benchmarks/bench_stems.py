"""Stem rendering speed, in multiples of real time, on POP909 songs (issue 3: at least 100×).

Now: `render_stems` (every part + mix, loudness-normalised, 48 kHz 24-bit WAV
files) with `workers=1` (no fork), with `workers=2` (synthesis in two
processes) and with its default (one process per idle core, read from the load
average); `render_audio` (the same in memory, default workers).
Before, the baseline, same run and songs: the pipeline as it stood before
(commit 73372c2): the same TinySoundFont synthesis, one part after another in
one process, pyloudnorm's meter, the gain as a pass of its own, libsndfile's
float-to-24-bit path.
Wall and CPU seconds are each the least of `REPEATS` runs (the machine is
shared); CPU counts the process, its threads and its forked children.
"""
from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

import numpy as np

TITLE = "Stem rendering (×real time)"
SONGS = ("001", "002", "003")
POP909 = Path("/work/shared/data/pop909")
REPEATS = 2


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _best(fn) -> tuple[float, float]:
    """(wall s, CPU s), each the least of REPEATS runs."""
    walls, cpus = [], []
    for _ in range(REPEATS):
        with tempfile.TemporaryDirectory() as out:
            wall, cpu = time.perf_counter(), _cpu_seconds()
            fn(out)
            walls.append(time.perf_counter() - wall)
            cpus.append(_cpu_seconds() - cpu)
    return min(walls), min(cpus)


def render_stems_before(song, out_dir: str) -> None:
    """The stem pipeline before this benchmark's speed-up, kept here as the baseline."""
    import pyloudnorm
    import soundfile

    from cuesmith.engine.music import render

    synth = render.load_synth(render.default_soundfont(), render.SAMPLE_RATE)
    frames = render.render_length(song, render.SAMPLE_RATE)
    stems = []
    for part in (p for p in song.parts if p.notes):
        out = np.zeros((frames, 2), dtype=np.float32)
        stems.append(render.synthesize_part(synth, part, song, out, render.SAMPLE_RATE))
    mix = np.zeros((frames, 2), dtype=np.float32)
    for samples in stems:
        mix += samples
    loudness = pyloudnorm.Meter(render.SAMPLE_RATE).integrated_loudness(mix)
    peak = max(float(np.max(np.abs(x))) for x in [mix, *stems])
    gain = np.float32(10 ** (min(render.TARGET_LUFS - loudness, render.CEILING_DBFS - 20 * np.log10(peak)) / 20))
    for i, samples in enumerate([mix, *stems]):
        samples *= gain
        soundfile.write(Path(out_dir) / f"{i}.wav", samples, render.SAMPLE_RATE, subtype="PCM_24", format="WAV")


def run() -> str:
    from cuesmith.engine.music.midi_io import read_midi
    from cuesmith.engine.music.render import _worker_count, render_audio, render_stems
    from cuesmith.engine.music.score import Note, Part, Song

    render_audio(Song(parts=[Part("warm-up", [Note(0, 480, 60)])]))  # imports, first SoundFont load
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    default_workers = _worker_count(None)
    variants = {
        "before": render_stems_before,
        "now, workers=1": lambda song, out: render_stems(song, out, workers=1),
        "now, workers=2": lambda song, out: render_stems(song, out, workers=2),
        "now, in memory": lambda song, out: render_audio(song),
        "now": render_stems,
    }
    rows, totals = [], {name: [0.0, 0.0] for name in variants}
    music = 0.0
    for number in SONGS:
        song = read_midi(POP909 / number / f"{number}.mid")
        seconds = song.duration_seconds
        music += seconds
        timings = {name: _best(lambda out, fn=fn: fn(song, out)) for name, fn in variants.items()}
        for name, (wall, cpu) in timings.items():
            totals[name][0] += wall
            totals[name][1] += cpu
        rows.append(_row(number, str(len(song.parts)), seconds, timings))
    rows.append(_row("all", "", music, totals))
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    return "\n".join([
        f"48 kHz stereo 24-bit WAV files of every part and the mix, normalised to -16 LUFS. "
        f"Now = `render_stems` with its default workers (one per idle core: {default_workers} at the start "
        f"of this run); workers=1: no fork, one writer thread; in memory: `render_audio`. "
        f"Before = the serial pipeline before the speed-up "
        f"(pyloudnorm, libsndfile float path), same songs, same run. ×RT = music seconds / wall seconds; "
        f"CPU = user + system seconds of the process and its children; each the least of {REPEATS} runs. "
        f"workers=1 ×RT per CPU s = music seconds / CPU seconds: what one core to itself would reach. "
        f"Load average before/after: {' '.join(load_before)} / {' '.join(load_after)} (2 cores, shared).",
        "",
        "| POP909 song | parts | music s | before ×RT | now, workers=1 ×RT | now, workers=2 ×RT | now ×RT "
        "| now, in memory ×RT | now / before | CPU s, before → workers=1 → workers=2 | workers=1 ×RT per CPU s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ])


def _row(label: str, parts: str, seconds: float, timings: dict) -> str:
    before, one, two, memory, now = (timings[k] for k in ("before", "now, workers=1", "now, workers=2",
                                                         "now, in memory", "now"))
    return (f"| {label} | {parts} | {seconds:.0f} | {seconds / before[0]:.0f}× | {seconds / one[0]:.0f}× "
            f"| {seconds / two[0]:.0f}× | {seconds / now[0]:.0f}× | {seconds / memory[0]:.0f}× "
            f"| {before[0] / now[0]:.1f} | {before[1]:.2f} → {one[1]:.2f} → {two[1]:.2f} "
            f"| {seconds / one[1]:.0f}× |")


if __name__ == "__main__":
    print(run())
