"""Chord recognition from notes, per beat or per half bar.

Each window (a beat, or half a bar) becomes three 12-bin pitch-class
features: log(1 + sounding time per pitch class, in windows), the same
normalised to its peak, and the bass (lowest pitch sounding for at least a
quarter of the window). A chord of quality q on root r scores
`W[q] . features rotated to r + b[q]`; no-chord scores on the overall
loudness. W, b are fitted as a softmax over the 121 chords (12 roots x 10
qualities + N) on POP909 songs 001–700 only, and a Viterbi pass over the
windows charges a change of chord, less on strong beats (bar and half-bar
lines) than on weak ones. Fitted numbers live in chord_model.json:

    python -m cuesmith.engine.music.chords --fit    # rewrites chord_model.json
"""
from __future__ import annotations

import argparse
import bisect
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from .score import CHORD_QUALITIES, NO_CHORD, Chord, Note, Song

MODEL_PATH = Path(__file__).with_name("chord_model.json")

HARTE_QUALITIES = {"M": "maj", "m": "min", "M7": "maj7", "m7": "min7", "7": "7", "o": "dim",
                   "o7": "dim7", "sus2": "sus2", "sus4": "sus4", "+": "aug"}
# Sharps except E-flat and B-flat, as score.PITCH_CLASSES; mir_eval reads both spellings.
HARTE_ROOTS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
N_CLASSES = 12 * len(CHORD_QUALITIES) + 1  # index 12*q + root; the last is no-chord
BASS_MIN_SHARE = 0.25  # of the window a bass note must sound for


def harte_label(chord: Chord) -> str:
    """'A:min7', 'C:maj', 'B:dim7', ... or 'N' (the labels mir_eval.chord reads)."""
    if chord.is_none:
        return "N"
    return f"{HARTE_ROOTS[chord.root]}:{HARTE_QUALITIES[chord.quality]}"


def chord_from_harte(label: str, start: int = 0, end: int = 1) -> Chord:
    """Chord of a Harte label, with the quality mapping of pop909.parse_harte."""
    from .pop909 import parse_harte

    root, quality = parse_harte(label)
    return Chord(start, end, root, quality)


# -- windows and features --------------------------------------------------------

def windows(song: Song, per: str = "beat", end_tick: Optional[int] = None) -> list[tuple[int, int, bool]]:
    """(start, end, is_strong) of each beat or half bar; strong = a bar or half-bar line
    (in odd metres such as 3/4, which have no middle, only the bar line: "half bars" are bars)."""
    if per not in ("beat", "half_bar"):
        raise ValueError(f"per must be 'beat' or 'half_bar', not {per!r}")
    end = song.end_tick if end_tick is None else end_tick
    beats = song.beats(end)
    starts, strong = [], []
    index_in_bar = 0
    for tick, downbeat in beats:
        index_in_bar = 0 if downbeat else index_in_bar + 1
        numerator = song.time_signature_at(tick).numerator
        half = numerator // 2 if numerator % 2 == 0 else numerator  # odd metres: whole bars
        is_strong = index_in_bar % half == 0
        if per == "beat" or is_strong:
            starts.append(tick)
            strong.append(is_strong)
    bounds = starts + [max(end, starts[-1] + 1)] if starts else []
    return [(a, b, s) for a, b, s in zip(bounds, bounds[1:], strong) if b > a]


def window_features(notes: Sequence[Note], spans: Sequence[tuple[int, int, bool]]) -> np.ndarray:
    """(windows, 3, 12) features as in the module docstring."""
    features = np.zeros((len(spans), 3, 12))
    if not spans or not notes:
        return features
    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    pcs = np.array([n.pitch % 12 for n in notes])
    pitches = np.array([n.pitch for n in notes])
    order = np.argsort(starts)
    starts, ends, pcs, pitches = starts[order], ends[order], pcs[order], pitches[order]
    longest = int((ends - starts).max())
    for i, (a, b, _) in enumerate(spans):
        lo = bisect.bisect_left(starts, a - longest)
        hi = bisect.bisect_left(starts, b)
        overlap = (np.minimum(ends[lo:hi], b) - np.maximum(starts[lo:hi], a)) / (b - a)
        live = overlap > 0
        if not live.any():
            continue
        chroma = np.bincount(pcs[lo:hi][live], weights=overlap[live], minlength=12)
        features[i, 0] = np.log1p(chroma)
        features[i, 1] = chroma / chroma.max()
        held = overlap >= BASS_MIN_SHARE
        candidates = held if held.any() else live
        features[i, 2, pcs[lo:hi][candidates][np.argmin(pitches[lo:hi][candidates])]] = 1.0
    return features


def rotated(features: np.ndarray) -> np.ndarray:
    """(windows, 12 roots, 36): each window's features seen from each root."""
    return np.stack([np.roll(features, -root, axis=2).reshape(len(features), -1) for root in range(12)], axis=1)


def none_features(features: np.ndarray) -> np.ndarray:
    """(windows, 3): what the no-chord score sees — total and peak sound, and a constant."""
    return np.stack([features[:, 0].sum(1), features[:, 0].max(1), np.ones(len(features))], axis=1)


def chord_scores(features: np.ndarray, model: dict) -> np.ndarray:
    """(windows, N_CLASSES) log-probabilities of each chord class per window."""
    x = rotated(features)
    scores = np.einsum("wrd,qd->wqr", x, model["weights"]) + model["bias"][None, :, None]
    scores = scores.reshape(len(features), -1)
    scores = np.concatenate([scores, (none_features(features) @ model["none"])[:, None]], axis=1)
    scores -= scores.max(axis=1, keepdims=True)
    return scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))


def viterbi(log_probs: np.ndarray, strong: np.ndarray, change_cost: tuple[float, float]) -> np.ndarray:
    """Best class path when switching chords costs change_cost[0] on strong windows and [1] on weak."""
    best = log_probs[0].copy()
    back = np.zeros(log_probs.shape, dtype=np.int64)
    for t in range(1, len(log_probs)):
        cost = change_cost[0] if strong[t] else change_cost[1]
        leader = int(np.argmax(best))
        switch = best[leader] - cost
        back[t] = np.where(best >= switch, np.arange(best.size), leader)
        best = np.maximum(best, switch) + log_probs[t]
    path = np.empty(len(log_probs), dtype=np.int64)
    path[-1] = int(np.argmax(best))
    for t in range(len(log_probs) - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


@lru_cache(maxsize=1)
def _stored_model() -> dict:
    data = json.loads(MODEL_PATH.read_text())
    return {k: np.array(v) if isinstance(v, list) else v for k, v in data.items()}


def class_to_chord(index: int, start: int, end: int) -> Chord:
    if index == N_CLASSES - 1:
        return Chord(start, end, None, NO_CHORD)
    quality, root = divmod(int(index), 12)
    return Chord(start, end, root, CHORD_QUALITIES[quality])


def chord_to_class(chord: Chord) -> int:
    if chord.is_none:
        return N_CLASSES - 1
    return 12 * CHORD_QUALITIES.index(chord.quality) + chord.root


def merge_equal(chords: Iterable[Chord]) -> list[Chord]:
    """Adjacent chords with the same root and quality joined into one."""
    merged: list[Chord] = []
    for chord in chords:
        last = merged[-1] if merged else None
        if last and (last.root, last.quality) == (chord.root, chord.quality) and last.end == chord.start:
            merged[-1] = Chord(last.start, chord.end, last.root, last.quality)
        else:
            merged.append(chord)
    return merged


def _notes(song: Song, parts: Optional[Sequence[str]]) -> list[Note]:
    return [n for p in song.parts if not p.is_drum and (parts is None or p.name in parts) for n in p.notes]


def recognize_chords(song: Song, per: str = "beat", parts: Optional[Sequence[str]] = None,
                     model: Optional[dict] = None) -> list[Chord]:
    """Chords of `song` (non-drum parts, or only those named) per beat or per half bar,
    adjacent equal chords merged; windows without notes are no-chord."""
    notes = _notes(song, parts)
    if not notes:
        return []
    spans = windows(song, per, max(n.end for n in notes))
    model = model or _stored_model()
    features = window_features(notes, spans)
    strong = np.array([s for _, _, s in spans])
    path = viterbi(chord_scores(features, model), strong, tuple(model["change_cost"]))
    return merge_equal(class_to_chord(c, a, b) for c, (a, b, _) in zip(path, spans))


# -- fitting on POP909 001-700 ---------------------------------------------------

def reference_classes(chords: Sequence[Chord], spans: Sequence[tuple[int, int, bool]]) -> np.ndarray:
    """Class of the annotated chord at the middle of each window (no-chord where none is)."""
    starts = [c.start for c in chords]
    out = np.full(len(spans), N_CLASSES - 1)
    for i, (a, b, _) in enumerate(spans):
        mid = (a + b) // 2
        j = bisect.bisect_right(starts, mid) - 1
        if j >= 0 and chords[j].end > mid:
            out[i] = chord_to_class(chords[j])
    return out


def fit_scores(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> dict:
    """Softmax regression of window classes `y` on window features `x` (windows, 3, 12), by L-BFGS."""
    from scipy.optimize import minimize

    xr = rotated(x).astype(np.float64)
    xn = none_features(x)
    n_q, dim = len(CHORD_QUALITIES), xr.shape[2]

    def unpack(theta):
        w = theta[:n_q * dim].reshape(n_q, dim)
        return {"weights": w, "bias": theta[n_q * dim:n_q * dim + n_q], "none": theta[n_q * dim + n_q:]}

    def loss(theta):
        m = unpack(theta)
        s = np.einsum("wrd,qd->wqr", xr, m["weights"]) + m["bias"][None, :, None]
        s = np.concatenate([s.reshape(len(x), -1), (xn @ m["none"])[:, None]], axis=1)
        s -= s.max(axis=1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(axis=1, keepdims=True)
        nll = -np.log(p[np.arange(len(y)), y] + 1e-300).mean()
        g = p
        g[np.arange(len(y)), y] -= 1.0
        g /= len(y)
        gq = g[:, :-1].reshape(len(x), n_q, 12)
        gw = np.einsum("wqr,wrd->qd", gq, xr) + l2 * m["weights"]
        gb = gq.sum(axis=(0, 2))
        gn = xn.T @ g[:, -1]
        return nll + 0.5 * l2 * (m["weights"] ** 2).sum(), np.concatenate([gw.ravel(), gb, gn])

    theta0 = np.zeros(n_q * dim + n_q + 3)
    result = minimize(loss, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 400})
    return unpack(result.x)


def _training_windows(numbers: Iterable[int], per: str = "beat"):
    from . import pop909

    for number in numbers:
        song = pop909.load_song(number).song
        notes = _notes(song, None)
        spans = windows(song, per, max((n.end for n in notes), default=0))
        yield window_features(notes, spans), np.array([s for _, _, s in spans]), reference_classes(song.chords, spans)


def tune_change_cost(songs: list, model: dict, grid: Sequence[float] = (0.0, 0.5, 1, 2, 3, 4, 6, 8)) -> tuple[float, float]:
    """The (strong, weak) change costs with the best window accuracy on `songs`."""
    scored = [(chord_scores(f, model), s, y) for f, s, y in songs]
    best, best_acc = (0.0, 0.0), -1.0
    for strong_cost in grid:
        for weak_cost in grid:
            if weak_cost < strong_cost:
                continue
            hits = sum((viterbi(lp, s, (strong_cost, weak_cost)) == y).sum() for lp, s, y in scored)
            acc = hits / sum(len(y) for _, _, y in scored)
            if acc > best_acc:
                best, best_acc = (strong_cost, weak_cost), acc
    return best


def fit_on_pop909_train(step: int = 2) -> dict:
    """Fit on every `step`-th beat of songs 001–700; tune change costs on every 7th song of them."""
    from . import pop909

    songs = list(_training_windows(pop909.TRAIN_SONGS))
    x = np.concatenate([f[::step] for f, _, _ in songs])
    y = np.concatenate([c[::step] for _, _, c in songs])
    model = fit_scores(x, y)
    model["change_cost"] = list(tune_change_cost(songs[::7], model))
    return model


def model_json(model: dict) -> dict:
    def rounded(v):
        return np.round(np.asarray(v, float), 5).tolist()

    return {
        "fitted_on": "POP909 songs 001-700 (chord_midi.txt via pop909.parse_harte), beats on the annotated grid",
        "command": "python -m cuesmith.engine.music.chords --fit",
        "weights": rounded(model["weights"]), "bias": rounded(model["bias"]),
        "none": rounded(model["none"]), "change_cost": rounded(model["change_cost"]),
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="refit chord_model.json on POP909 001-700")
    args = parser.parse_args(argv)
    if args.fit:
        MODEL_PATH.write_text(json.dumps(model_json(fit_on_pop909_train())) + "\n")
        print(f"wrote {MODEL_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
