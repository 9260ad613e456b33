"""Beat tracking on POP909 validation songs 701-800 rendered to audio, against beat_midi.txt.

Each song's MIDI is rendered with the default SoundFont (music.render) at
`RENDER_RATE` and cached as FLAC in the cuesmith cache folder; both trackers
read the same file. Scores: mir_eval F-measure (±70 ms) and AMLt. The
baseline is librosa's default `beat_track`; ours is `music.audio.track_beats`
(tuned only on renders of 001-700: see its docstring).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

TITLE = "Beat tracking (POP909 701-800 rendered to audio, mir_eval F-measure and AMLt)"
RENDER_RATE = 22_050


def render_dir() -> Path:
    from cuesmith.engine.video.analysis import cache_dir

    return cache_dir() / "pop909-renders"


def rendered(number: int) -> Path:
    """The cached render of POP909 song `number` (rendered on first use)."""
    import soundfile

    from cuesmith.engine.music import pop909
    from cuesmith.engine.music.midi_io import read_midi
    from cuesmith.engine.music.render import render_audio

    path = render_dir() / f"{number:03d}.flac"
    if not path.exists():
        song = read_midi(pop909.song_dir(number) / f"{number:03d}.mid")
        audio = render_audio(song, sample_rate=RENDER_RATE)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part.flac")
        soundfile.write(tmp, audio.mix.mean(axis=1), RENDER_RATE, subtype="PCM_16")
        tmp.replace(path)
    return path


def reference_beats(number: int) -> np.ndarray:
    from cuesmith.engine.music import pop909

    return np.array([t for t, _ in pop909.read_beats(pop909.song_dir(number) / "beat_midi.txt")])


def scores(reference: np.ndarray, estimated: np.ndarray) -> tuple[float, float]:
    import mir_eval

    ref = mir_eval.beat.trim_beats(reference)
    est = mir_eval.beat.trim_beats(np.asarray(estimated, dtype=float))
    f = mir_eval.beat.f_measure(ref, est)
    amlt = mir_eval.beat.continuity(ref, est)[3]
    return f, amlt


def librosa_default(path: Path) -> np.ndarray:
    import librosa

    y, sr = librosa.load(path, sr=RENDER_RATE)
    _, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    return beats


def ours(path: Path) -> np.ndarray:
    from cuesmith.engine.music.audio import load_audio, track_beats

    audio = load_audio(path)
    return track_beats(audio).beats


def evaluate(songs, trackers) -> dict:
    results = {name: [] for name in trackers}
    for number in songs:
        path = rendered(number)
        reference = reference_beats(number)
        for name, track in trackers.items():
            started = time.perf_counter()
            estimated = track(path)
            results[name].append((*scores(reference, estimated), time.perf_counter() - started))
    return {name: np.array(rows) for name, rows in results.items()}


def run() -> str:
    from cuesmith.engine.music import pop909

    songs = list(pop909.VALID_SONGS)
    results = evaluate(songs, {"librosa beat_track (default, baseline)": librosa_default,
                               "cuesmith track_beats": ours})
    rows = ["| tracker | songs | F-measure | AMLt | s/song |", "| --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        rows.append(f"| {name} | {len(r)} | {r[:, 0].mean():.3f} | {r[:, 1].mean():.3f} | {r[:, 2].mean():.2f} |")
    base, mine = results.values()
    return ("Renders: the POP909 MIDI through the default SoundFont, mono, "
            f"{RENDER_RATE} Hz. Reference: beat_midi.txt. Goal: ≥ 0.85 F and AMLt.\n\n" + "\n".join(rows)
            + f"\n\nours / librosa: F ×{mine[:, 0].mean() / base[:, 0].mean():.2f}, "
            f"AMLt ×{mine[:, 1].mean() / base[:, 1].mean():.2f}.")


if __name__ == "__main__":
    if sys.argv[1:] == ["render"]:  # warm the render cache for the validation songs
        from cuesmith.engine.music import pop909

        for n in pop909.VALID_SONGS:
            rendered(n)
    else:
        print(run())
