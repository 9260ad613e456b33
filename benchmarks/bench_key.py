"""Key detection on POP909 validation songs 701-800 vs key_audio.txt, beside music21."""
from __future__ import annotations

import time

import numpy as np

TITLE = "Key detection (POP909 701-800, MIREX weighted score)"
MUSIC21_EVERY = 5  # music21 takes seconds a song: it runs on every 5th validation song


def music21_key(path):
    from music21 import converter

    from cuesmith.engine.music.score import Key

    found = converter.parse(str(path)).analyze("key")
    return Key(found.tonic.pitchClass, "minor" if found.mode == "minor" else "major")


def timed(fn, *args):
    started = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - started


def run() -> str:
    import mir_eval

    from cuesmith.engine.music import key, pop909
    from cuesmith.engine.music.midi_io import read_midi

    results = {}  # method -> {song: (score, seconds)}
    for number in pop909.VALID_SONGS:
        item = pop909.load_song(number)
        path = pop909.song_dir(number) / f"{number:03d}.mid"
        reference = item.song.key.name
        _, load_s = timed(read_midi, path)
        for name, detect in (("ours", key.detect_key), ("ks", key.detect_key_ks)):
            found, s = timed(detect, item.song)
            results.setdefault(name, {})[number] = (mir_eval.key.weighted_score(reference, found.name), s + load_s)
        if number % MUSIC21_EVERY == 0:
            found, s = timed(music21_key, path)
            results.setdefault("music21", {})[number] = (mir_eval.key.weighted_score(reference, found.name), s)

    subset = sorted(results["music21"])

    def stats(name, songs):
        values = np.array([results[name][n] for n in songs])
        return values[:, 0].mean(), values[:, 1].mean()

    rows = ["| method | songs | weighted score | exact | s/song (file → key) |", "| --- | --- | --- | --- | --- |"]
    for label, name, songs in (("ours (profiles fitted on 001-700)", "ours", list(results["ours"])),
                               ("Krumhansl–Schmuckler (ours)", "ks", list(results["ks"])),
                               ("ours", "ours", subset), ("Krumhansl–Schmuckler", "ks", subset),
                               ("music21 analyze('key') (baseline)", "music21", subset)):
        score, seconds = stats(name, songs)
        exact = np.mean([results[name][n][0] == 1.0 for n in songs])
        rows.append(f"| {label} | {len(songs)} | {score:.3f} | {exact:.2f} | {seconds:.4f} |")
    ours_score, ours_s = stats("ours", subset)
    m21_score, m21_s = stats("music21", subset)
    return (f"Reference: key of the longest key_audio.txt section. music21 runs on every {MUSIC21_EVERY}th "
            f"validation song ({len(subset)} songs); times include reading the MIDI file (ours: read_midi + "
            "detect). Goal: ≥ 0.90 and ≥ 50× faster than music21.\n\n" + "\n".join(rows)
            + f"\n\nOn the music21 subset: ours − music21 = {ours_score - m21_score:+.3f}; "
            f"speed-up {m21_s / ours_s:.0f}×.")


if __name__ == "__main__":
    print(run())
