"""Key detection from notes: Krumhansl–Schmuckler, and a profile fitted on POP909.

Both correlate a duration-weighted pitch-class histogram with a key profile
rotated to each of the 24 keys and take the best. `detect_key_ks` uses the
Krumhansl–Kessler probe-tone profiles (what V-MusProd annotates SymMV with);
`detect_key` scores the 24 keys with profiles fitted on POP909 songs 001–700
only (their key_audio.txt labels), one per mode for the whole texture and one
for the skyline melody, kept in key_profiles.json beside this file:

    python -m cuesmith.engine.music.key --fit    # rewrites key_profiles.json
"""
from __future__ import annotations

import argparse
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from .score import Key, Note, Song

PROFILE_PATH = Path(__file__).with_name("key_profiles.json")

# Krumhansl & Kessler (1982) probe-tone ratings, tonic first.
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

MODES = ("major", "minor")


def pitch_class_histogram(notes: Iterable[Note]) -> np.ndarray:
    """Total duration in ticks of each of the 12 pitch classes."""
    pcs, durations = [], []
    for note in notes:
        pcs.append(note.pitch % 12)
        durations.append(note.duration)
    return np.bincount(np.array(pcs, dtype=np.int64), weights=np.array(durations, float), minlength=12)


def song_histogram(song: Song, parts: Optional[Sequence[str]] = None) -> np.ndarray:
    return pitch_class_histogram(
        n for p in song.parts if not p.is_drum and (parts is None or p.name in parts) for n in p.notes
    )


def key_scores(histogram: np.ndarray, major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Pearson correlation of `histogram` with each key's profile: shape (2, 12), [mode, tonic]."""
    rotated = np.array([[np.roll(profile, tonic) for tonic in range(12)] for profile in (major, minor)])
    h = histogram - histogram.mean()
    r = rotated - rotated.mean(axis=-1, keepdims=True)
    denom = np.linalg.norm(r, axis=-1) * np.linalg.norm(h)
    return (r @ h) / np.where(denom > 0, denom, 1.0)


def _best_key(histogram: np.ndarray, major: np.ndarray, minor: np.ndarray) -> Key:
    if histogram.sum() <= 0:
        return Key(0, "major")  # no notes: C major, the conventional default
    mode, tonic = np.unravel_index(np.argmax(key_scores(histogram, major, minor)), (2, 12))
    return Key(int(tonic), MODES[mode])


def detect_key_ks(song: Song) -> Key:
    """Krumhansl–Schmuckler with the Krumhansl–Kessler profiles."""
    return _best_key(song_histogram(song), KK_MAJOR, KK_MINOR)


def key_features(song: Song) -> np.ndarray:
    """(2, 12): normalised duration-weighted pitch-class histograms of all notes
    and of the skyline melody (the top line says more about the tonic than the chords)."""
    from .skyline import skyline

    notes = [n for p in song.parts if not p.is_drum for n in p.notes]
    melody, _ = skyline(notes)
    rows = [pitch_class_histogram(notes), pitch_class_histogram(melody)]
    return np.array([row / row.sum() if row.sum() > 0 else row for row in rows])


def _rotations(features: np.ndarray) -> np.ndarray:
    """(12, F*12): the features seen from each tonic (tonic moved to index 0)."""
    return np.array([np.roll(features, -tonic, axis=1).ravel() for tonic in range(12)])


def fitted_key_scores(features: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """(24,) scores, majors on C..B then minors: a profile per mode and feature row, summed."""
    rotated = _rotations(features)
    return np.concatenate([rotated @ weights[m] + bias[m] for m in range(2)])


@lru_cache(maxsize=1)
def fitted_model() -> tuple[np.ndarray, np.ndarray]:
    data = json.loads(PROFILE_PATH.read_text())
    return np.array(data["weights"]), np.array(data["bias"])


def detect_key(song: Song) -> Key:
    """Key by the profiles fitted on POP909 001–700 (see module docstring); falls back to
    C major without notes."""
    features = key_features(song)
    if features.sum() <= 0:
        return Key(0, "major")
    best = int(np.argmax(fitted_key_scores(features, *fitted_model())))
    return Key(best % 12, MODES[best // 12])


def fit_key_model(examples: Iterable[tuple[np.ndarray, Key]], l2: float = 1e-4,
                  steps: int = 3000, rate: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """Conditional-logit fit of per-mode profiles: softmax over the 24 keys of
    `fitted_key_scores`, full-batch gradient descent with an L2 penalty.
    Regularisation and features were chosen by 5-fold cross-validation on 001–700."""
    feats, labels = zip(*examples)
    x = np.array([_rotations(f) for f in feats])  # songs, tonics, dims
    y = np.array([12 * MODES.index(k.mode) + k.tonic for k in labels])
    weights, bias = np.zeros((2, x.shape[2])), np.zeros(2)
    for _ in range(steps):
        scores = np.concatenate([x @ weights[0] + bias[0], x @ weights[1] + bias[1]], axis=1)
        prob = np.exp(scores - scores.max(axis=1, keepdims=True))
        prob /= prob.sum(axis=1, keepdims=True)
        prob[np.arange(len(y)), y] -= 1.0  # gradient of the mean log loss w.r.t. the scores
        prob /= len(y)
        grad = np.stack([np.einsum("nt,ntd->d", prob[:, 12 * m:12 * m + 12], x) for m in range(2)])
        weights -= rate * (grad + l2 * weights)
        bias -= rate * np.array([prob[:, :12].sum(), prob[:, 12:].sum()]) / 12
    return weights, bias


def model_json(weights: np.ndarray, bias: np.ndarray) -> dict:
    return {
        "fitted_on": "POP909 songs 001-700, key_audio.txt (key of the longest section)",
        "command": "python -m cuesmith.engine.music.key --fit",
        "features": "rows: all notes, skyline melody; duration-weighted pitch classes, normalised",
        "weights": [[round(float(v), 5) for v in row] for row in weights],
        "bias": [round(float(v), 5) for v in bias],
    }


def _fit_on_pop909_train() -> dict:
    from . import pop909

    def examples():
        for number in pop909.TRAIN_SONGS:
            item = pop909.load_song(number)
            yield key_features(item.song), main_key(item.key_labels)

    return model_json(*fit_key_model(examples()))


def main_key(annotations: Iterable[tuple[float, float, str]]) -> Key:
    """The key of the longest (start_s, end_s, 'Gb:maj') section, as in POP909's key_audio.txt."""
    from .pop909 import parse_key

    start, end, label = max(annotations, key=lambda a: a[1] - a[0])
    return parse_key(label)



def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="refit key_profiles.json on POP909 001-700")
    args = parser.parse_args(argv)
    if args.fit:
        PROFILE_PATH.write_text(json.dumps(_fit_on_pop909_train(), indent=2) + "\n")
        print(f"wrote {PROFILE_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
