"""`cuesmith describe`: time per 3-minute song, and section boundaries vs POP909's human phrase labels.

Sections are scored against the phrase boundaries of human_label1.txt
(pop909-structure; bar k of the labels = the k-th annotated downbeat of
beat_midi.txt) with mir_eval.segment.detection at 0.5 s and 3 s, first and
last boundaries left out (trim). Two inputs: the MIDI file as a user gives it
(read_midi: POP909's placeholder 1/4 metre, bars regrouped by the describer)
and the song on its annotated bar grid (pop909.load_song). Baseline, same
songs: a boundary every 8 bars of the same bar grid.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np

TITLE = "Music-video description (cuesmith describe): speed and section boundaries on POP909 701-800"
STRUCTURE = "pop909-structure"


def phrase_boundaries(number: int) -> list[float]:
    """Phrase start times (seconds, the annotation clock) from human_label1.txt, the end included."""
    from cuesmith.engine.music import pop909

    folder = pop909.song_dir(number)
    labels = (folder.parent.parent / STRUCTURE / f"{number:03d}" / "human_label1.txt").read_text().strip()
    bars = np.cumsum([0] + [int(n) for n in re.findall(r"[A-Za-z](\d+)", labels)])
    downbeats = [t for t, down in pop909.read_beats(folder / "beat_midi.txt") if down]
    return [downbeats[min(b, len(downbeats) - 1)] for b in bars]


def intervals(edges: list[float]) -> np.ndarray:
    edges = sorted(set(round(e, 4) for e in edges))
    return np.array(list(zip(edges[:-1], edges[1:])))


def f_measures(reference: list[float], estimate: list[float]) -> tuple[float, float]:
    import mir_eval

    ref, est = intervals([max(0.0, t) for t in reference]), intervals([max(0.0, t) for t in estimate])
    return tuple(mir_eval.segment.detection(ref, est, window=w, trim=True)[2] for w in (0.5, 3.0))


def every_n_bars(downbeats: list[float], duration: float, n: int = 8) -> list[float]:
    return [0.0] + list(downbeats[n::n]) + [duration]


def aligned_seconds(item, times: list[float]) -> list[float]:
    """Times on a load_song Song's clock moved to the annotation clock (the original file's seconds)."""
    from cuesmith.engine.music.midi_io import read_midi
    from cuesmith.engine.music import pop909

    raw = read_midi(pop909.song_dir(item.number) / f"{item.number:03d}.mid")
    return [raw.tick_to_seconds(item.song.seconds_to_tick(t) + item.tick_offset) for t in times]


def section_edges(description) -> list[float]:
    return [s.start for s in description.analysis.sections] + [description.analysis.duration]


def run(songs=None) -> str:
    from cuesmith.engine.describe import describe
    from cuesmith.engine.music import pop909

    songs = list(songs or pop909.VALID_SONGS)
    rows = {"midi file": [], "annotated bar grid": [], "every 8 bars (baseline)": []}
    seconds = []
    for number in songs:
        path = pop909.song_dir(number) / f"{number:03d}.mid"
        reference = phrase_boundaries(number)
        started = time.perf_counter()
        from_file = describe(path)
        seconds.append((time.perf_counter() - started) * 180.0 / from_file.analysis.duration)
        rows["midi file"].append(f_measures(reference, section_edges(from_file)))
        item = pop909.load_song(number)
        aligned = describe(item.song)
        rows["annotated bar grid"].append(f_measures(reference, aligned_seconds(item, section_edges(aligned))))
        grid = every_n_bars(aligned.analysis.downbeats, aligned.analysis.duration)
        rows["every 8 bars (baseline)"].append(f_measures(reference, aligned_seconds(item, grid)))
    lines = [f"Songs {songs[0]:03d}-{songs[-1]:03d} ({len(songs)}); boundaries vs human_label1 phrase starts.", "",
             "| sections from | F @0.5 s | F @3 s |", "| --- | --- | --- |"]
    for name, values in rows.items():
        f05, f3 = np.mean(values, axis=0)
        lines.append(f"| {name} | {f05:.3f} | {f3:.3f} |")
    lines += ["", f"Time per 3-minute song, MIDI, template prose: median {np.median(seconds):.2f} s "
                  f"(max {np.max(seconds):.2f} s), analysis + description, nothing written."]
    lines += [audio_timing(), f"Load average while timing: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.",
              "GGUF prose: no real instruction-tuned GGUF model is available offline on this "
              "machine, so the LLM path's time per song is not measured (the tests run it with a tiny random "
              "GGUF, which only exercises the grammar, time limit and fallback)."]
    return "\n".join(lines)


def audio_timing(number: int = 701, seconds: float = 60.0) -> str:
    """One render of the first `seconds` of a validation song, described as audio; time scaled to 3 minutes."""
    import tempfile

    from cuesmith.engine.describe import describe
    from cuesmith.engine.music import pop909
    from cuesmith.engine.music.render import render_audio, write_wav

    song = excerpt(pop909.load_song(number).song, seconds)
    audio = render_audio(song)
    with tempfile.TemporaryDirectory() as folder:
        wav = write_wav(audio.mix, Path(folder) / "excerpt.wav", audio.sample_rate)
        took = []
        for _ in range(2):  # the first call in a process also imports librosa and compiles its numba code
            started = time.perf_counter()
            d = describe(wav)
            took.append(time.perf_counter() - started)
    per3 = [t * 180.0 / d.analysis.duration for t in took]
    return (f"Audio (a {d.analysis.duration:.0f} s render of song {number:03d}), template prose: first call in the "
            f"process {took[0]:.1f} s, again {took[1]:.1f} s = {per3[1]:.1f} s per 3 minutes of audio "
            f"(first call {per3[0]:.1f} s per 3 minutes).")


def excerpt(song, seconds: float):
    from dataclasses import replace

    end = int(song.seconds_to_tick(seconds))
    parts = [replace(p, notes=[n for n in p.notes if n.start < end and n.end <= end]) for p in song.parts]
    return replace(song, parts=parts, chords=[c for c in song.chords if c.end <= end])


if __name__ == "__main__":
    import sys

    print(run(range(int(sys.argv[1]), int(sys.argv[2]) + 1) if len(sys.argv) > 2 else None))
