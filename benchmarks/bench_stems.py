"""Stem rendering speed, in multiples of real time, on POP909 songs.

Ours: `render_audio` (TinySoundFont, every part + mix, loudness-normalised, in
memory) and `render_stems` (the same plus 48 kHz 24-bit WAV files).
Baseline, same run and songs: pretty_midi's `synthesize()` (sine waves, mono,
no normalisation), the synthesiser that needs nothing beyond pretty_midi.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

TITLE = "Stem rendering (×real time)"
SONGS = ("001", "002", "003")
POP909 = Path("/work/shared/data/pop909")


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run() -> str:
    import pretty_midi

    from cuesmith.engine.music.midi_io import read_midi
    from cuesmith.engine.music.render import SAMPLE_RATE, render_audio, render_stems
    from cuesmith.engine.music.score import Note, Part, Song

    render_audio(Song(parts=[Part("warm-up", [Note(0, 480, 60)])]))  # imports, first SoundFont load
    rows = []
    totals = [0.0, 0.0, 0.0, 0.0]
    for number in SONGS:
        path = POP909 / number / f"{number}.mid"
        song = read_midi(path)
        seconds = song.duration_seconds
        in_memory = _timed(lambda: render_audio(song))
        with tempfile.TemporaryDirectory() as out:
            with_files = _timed(lambda: render_stems(song, out))
        baseline = _timed(lambda: pretty_midi.PrettyMIDI(str(path)).synthesize(fs=SAMPLE_RATE))
        rows.append(f"| {number} | {len(song.parts)} | {seconds:.0f} | {seconds / in_memory:.0f}× "
                    f"| {seconds / with_files:.0f}× | {seconds / baseline:.0f}× "
                    f"| {baseline / in_memory:.1f} |")
        for i, value in enumerate((seconds, in_memory, with_files, baseline)):
            totals[i] += value
    music, ours, files, base = totals
    rows.append(f"| all | | {music:.0f} | {music / ours:.0f}× | {music / files:.0f}× "
                f"| {music / base:.0f}× | {base / ours:.1f} |")
    return "\n".join([
        "Ours: TinySoundFont + TimGM6mb.sf2, each part and the mix, 48 kHz stereo, "
        "normalised to -16 LUFS. Baseline: `pretty_midi.PrettyMIDI.synthesize()` (sine, mono, 48 kHz), "
        "same songs, same run. Ratio = baseline time / our in-memory time.",
        "",
        "| POP909 song | parts | music s | ours, in memory | ours, + 24-bit WAV files | baseline (sine) | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ])


if __name__ == "__main__":
    print(run())
